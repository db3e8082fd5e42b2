"""The Redis budget ledger: the same rules as the database ledger, atomic across processes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User

from gateway.budget_redis import PREFIX, RedisBudgetLedger
from gateway.budgets import BudgetConfig, period_bounds
from gateway.models import Budget, BudgetUsage
from gateway.wire.errors import RateLimitError
from tests.services import require_redis

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

# The ledger expires a period's hash a day after the period ends: a fixed date would go stale, so "now" is now.
NOW = datetime.now(UTC)


async def _budget(**limits: object) -> BudgetConfig:
    def make() -> BudgetConfig:
        user = User.objects.create_user(username=f"u{uuid.uuid4().hex[:8]}", password="x" * 12)
        row = Budget.objects.create(name=f"b-{uuid.uuid4().hex[:6]}", user=user, period="month", **limits)
        return BudgetConfig(row.pk, row.name, row.period, row.limit_usd, row.limit_tokens, row.soft_threshold)

    return await sync_to_async(make)()


@pytest.fixture
async def ledger() -> RedisBudgetLedger:
    url = require_redis()
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    keys = [k async for k in client.scan_iter(match=f"{PREFIX}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
    return RedisBudgetLedger(url)


async def test_reserve_settle_and_refuse(ledger: RedisBudgetLedger) -> None:
    budget = await _budget(limit_usd=Decimal("1.00"), limit_tokens=None)
    reservations, warnings = await ledger.reserve((budget,), Decimal("0.60"), 100, NOW)
    assert warnings == [] and reservations[0].usd == Decimal("0.60")
    with pytest.raises(RateLimitError) as refused:
        await ledger.reserve((budget,), Decimal("0.50"), 100, NOW)
    assert f"budget '{budget.name}'" in refused.value.message and refused.value.retryable is False
    assert "retry-after" in refused.value.headers
    await ledger.settle(reservations, Decimal("0.30"), 80)  # the real cost replaces the reservation
    _, warnings = await ledger.reserve((budget,), Decimal("0.50"), 100, NOW)
    assert warnings  # 0.30 spent + 0.50 reserved = 80% of the limit: the soft threshold
    start, _ = period_bounds("month", NOW)
    row = await BudgetUsage.objects.aget(budget_id=budget.id, period_start=start)
    assert row.spent_usd == Decimal("0.30") and row.spent_tokens == 80  # persisted for admin and restarts


async def test_seeded_from_the_database_after_a_redis_restart(ledger: RedisBudgetLedger) -> None:
    budget = await _budget(limit_usd=None, limit_tokens=1000)
    start, _ = period_bounds("month", NOW)
    await BudgetUsage.objects.acreate(budget_id=budget.id, period_start=start, spent_tokens=950)
    with pytest.raises(RateLimitError, match="950 of 1000 tokens"):
        await ledger.reserve((budget,), Decimal(0), 100, NOW)


async def test_two_ledgers_never_overshoot(ledger: RedisBudgetLedger) -> None:
    budget = await _budget(limit_usd=Decimal("1.00"), limit_tokens=None)
    other = RedisBudgetLedger(ledger._url)  # a second process
    results = await asyncio.gather(
        *[(ledger if n % 2 else other).reserve((budget,), Decimal("0.10"), 1, NOW) for n in range(30)],
        return_exceptions=True,
    )
    admitted = [r for r in results if not isinstance(r, BaseException)]
    assert len(admitted) == 10  # exactly $1.00 of $0.10 reservations, whichever process asked
    assert all(isinstance(r, RateLimitError) for r in results if isinstance(r, BaseException))
