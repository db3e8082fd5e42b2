"""Usage maintenance: the daily rollup (for dashboards) and retention (run by Celery beat, or by hand)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, Q, Sum

from gateway.models import UsageDaily, UsageRecord


@transaction.atomic
def usage_rollup_day(*, day: date) -> int:
    """(Re)build the rollup rows of one UTC day from its request records; idempotent."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    records = UsageRecord.objects.filter(
        kind="request", created_at__gte=start, created_at__lt=start + timedelta(days=1)
    )
    groups = records.values("user_id", "api_key_id", "provider", "client_model").annotate(
        n_requests=Count("id"),
        n_errors=Count("id", filter=~Q(status=200)),
        sum_input=Sum("input_tokens"),
        sum_output=Sum("output_tokens"),
        sum_cache_read=Sum("cache_read_tokens"),
        sum_cost=Sum("cost_usd"),
        n_unpriced=Count("id", filter=Q(cost_usd__isnull=True)),
    )
    UsageDaily.objects.filter(day=day).delete()
    rows = [
        UsageDaily(
            day=day,
            user_id=g["user_id"],
            api_key_id=g["api_key_id"],
            provider=g["provider"],
            client_model=g["client_model"],
            requests=g["n_requests"],
            errors=g["n_errors"],
            input_tokens=g["sum_input"] or 0,
            output_tokens=g["sum_output"] or 0,
            cache_read_tokens=g["sum_cache_read"] or 0,
            cost_usd=g["sum_cost"] or Decimal(0),
            unpriced_requests=g["n_unpriced"],
        )
        for g in groups
    ]
    UsageDaily.objects.bulk_create(rows)
    return len(rows)


def usage_purge(*, retention_days: int, now: datetime | None = None) -> int:
    """Delete usage records older than the retention (the daily rollup is kept)."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    deleted, _ = UsageRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
