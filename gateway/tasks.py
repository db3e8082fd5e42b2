"""Celery tasks of the gateway app (thin: call a service)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="gateway.ping")
def ping(value: str = "pong") -> str:
    """Round-trip check used by `lynkr check` and the tests to prove a worker consumes the queue."""
    return value


@shared_task(name="gateway.usage_rollup")
def usage_rollup(days_back: int = 1) -> int:
    """Rebuild the daily rollup for today and the previous ``days_back`` days (late flushes are included)."""
    from datetime import UTC, datetime, timedelta

    from gateway.usage_services import usage_rollup_day

    today = datetime.now(UTC).date()
    return sum(usage_rollup_day(day=today - timedelta(days=n)) for n in range(days_back + 1))


@shared_task(name="gateway.usage_purge")
def usage_purge() -> int:
    from django.conf import settings

    from gateway.usage_services import usage_purge as purge

    return purge(retention_days=settings.LYNKR_USAGE_RETENTION_DAYS)
