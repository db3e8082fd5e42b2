"""Accounting admin pages render for staff; the daily rollup and retention work."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.test import Client

from gateway.models import Budget, Session, Turn, UsageDaily, UsageRecord
from gateway.services import apikey_create
from gateway.usage_services import usage_purge, usage_rollup_day

pytestmark = pytest.mark.django_db


def _record(n: int, user: User, when: datetime, cost: str | None, status: int = 200) -> UsageRecord:
    return UsageRecord.objects.create(
        record_id=f"r{n}:request", kind="request", request_id=f"r{n}", created_at=when, user=user, provider="p",
        client_model="m", input_tokens=10, output_tokens=5, cost_usd=Decimal(cost) if cost else None, status=status,
    )  # fmt: skip


def test_rollup_and_purge() -> None:
    user = User.objects.create_user(username="u", password="x" * 12)
    day = datetime(2026, 11, 20, 12, tzinfo=UTC)
    _record(1, user, day, "0.5")
    _record(2, user, day, None, status=500)
    _record(3, user, day - timedelta(days=1), "9")
    assert usage_rollup_day(day=day.date()) == 1
    row = UsageDaily.objects.get(day=day.date())
    assert (row.requests, row.errors, row.input_tokens, row.cost_usd, row.unpriced_requests) == (
        2,
        1,
        20,
        Decimal("0.5"),
        1,
    )
    assert usage_rollup_day(day=day.date()) == 1 and UsageDaily.objects.count() == 1  # idempotent
    assert usage_purge(retention_days=3, now=day + timedelta(days=3) - timedelta(hours=1)) == 1
    assert UsageRecord.objects.count() == 2 and UsageDaily.objects.count() == 1


def test_accounting_admin_pages(client: Client) -> None:
    User.objects.create_superuser(username="boss", password="x" * 16)
    client.login(username="boss", password="x" * 16)
    user = User.objects.create_user(username="dev", password="x" * 12)
    apikey_create(user=user)
    session = Session.objects.create(external_id="s-1", user=user)
    Turn.objects.create(session=session, request_id="t1", new_messages=[{"role": "user", "content": "hello there"}],
                        response={"content": [{"type": "text", "text": "hi back"}]}, message_count=1)  # fmt: skip
    Budget.objects.create(name="dev monthly", user=user, limit_usd=Decimal("10"))
    _record(1, user, datetime.now(UTC), "0.25")
    for url in ("/admin/gateway/priceentry/", "/admin/gateway/usagerecord/", "/admin/gateway/usagedaily/",
                "/admin/gateway/budget/", "/admin/gateway/ratelimit/", "/admin/gateway/session/"):  # fmt: skip
        assert client.get(url).status_code == 200, url
    page = client.get(f"/admin/gateway/session/{session.pk}/change/").content.decode()
    assert "hello there" in page and "hi back" in page
    assert "claude-sonnet-*" in client.get("/admin/gateway/priceentry/").content.decode()  # seeded prices
