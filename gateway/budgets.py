"""Budgets in USD and tokens: reserve at admission, reconcile at the end, atomically across processes.

At admission every budget that applies (the key's, the user's, each of the user's teams') reserves the request's
estimated cost (input estimate + ``LYNKR_BUDGET_OUTPUT_RESERVATION`` output tokens) in one transaction holding
the budget's period row lock (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite serialises writers). A request that
would cross a limit is refused before it reaches an upstream; at the end the reservation is replaced by the real
cost. So a budget is overshot by at most what is in flight, never by stale or per-process counters. A model with
an unknown price reserves and counts tokens only: an unknown price never blocks and never counts as $0 spent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from gateway.db import db_async
from gateway.models import Budget, BudgetUsage
from gateway.selectors import KeyInfo
from gateway.ttlcache import TtlCache
from gateway.wire.errors import RateLimitError


@dataclass(frozen=True, slots=True)
class BudgetConfig:
    id: int
    name: str
    period: str
    limit_usd: Decimal | None
    limit_tokens: int | None
    soft_threshold: Decimal


@dataclass(frozen=True, slots=True)
class Reservation:
    budget_id: int
    period_start: datetime
    usd: Decimal
    tokens: int


def period_bounds(period: str, now: datetime) -> tuple[datetime, datetime | None]:
    """Calendar periods in UTC: day, week (from Monday), month; total never resets."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day, day + timedelta(days=1)
    if period == "week":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    if period == "month":
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
        return start, end
    return datetime(2000, 1, 1, tzinfo=UTC), None


_cache: TtlCache[tuple[int, int, frozenset[int]], tuple[BudgetConfig, ...]] = TtlCache()


def budgets_for_sync(key_id: int, user_id: int, group_ids: frozenset[int]) -> tuple[BudgetConfig, ...]:
    rows = Budget.objects.filter(enabled=True).filter(
        Q(api_key_id=key_id) | Q(user_id=user_id) | Q(group_id__in=list(group_ids))
    )
    return tuple(BudgetConfig(b.pk, b.name, b.period, b.limit_usd, b.limit_tokens, b.soft_threshold) for b in rows)


_budgets_for_async = db_async(budgets_for_sync)  # wrapped once: db_async builds two wrapper functions per call


async def budgets_for(key: KeyInfo) -> tuple[BudgetConfig, ...]:
    """Cached per process for LYNKR_KEY_CACHE_TTL seconds (a new budget applies within that time)."""
    ids = (key.id, key.user_id, key.group_ids)
    return await _cache.get(ids, lambda: _budgets_for_async(*ids))


def budget_cache_clear() -> None:
    _cache.clear()


def exhausted_error(
    budget: BudgetConfig, end: datetime | None, committed_usd: Decimal, committed_tokens: int, usd: Decimal
) -> RateLimitError:
    """429 naming the budget, what ran out, and when it resets (x-should-retry: false: waiting will not help)."""
    if budget.limit_usd is not None and committed_usd + usd > budget.limit_usd:
        what = f"${committed_usd:.4f} of ${budget.limit_usd} used or reserved"
    else:
        what = f"{committed_tokens} of {budget.limit_tokens} tokens used or reserved"
    return _exhausted(budget, end, what)


def soft_warnings(budget: BudgetConfig, used_usd: Decimal, used_tokens: int) -> list[str]:
    warnings = []
    for limit, used, unit in ((budget.limit_usd, used_usd, "USD"), (budget.limit_tokens, used_tokens, "tokens")):
        if limit and Decimal(used) >= Decimal(limit) * Decimal(str(budget.soft_threshold)):
            warnings.append(f"{budget.name}: {Decimal(used) / Decimal(limit):.0%} of the {unit} limit")
    return warnings


def _exhausted(budget: BudgetConfig, end: datetime | None, what: str) -> RateLimitError:
    if end is None:
        message = f"budget '{budget.name}' is exhausted ({what}); it does not reset (total budget)"
        return RateLimitError(message, retryable=False)
    seconds = max(1, int((end - datetime.now(UTC)).total_seconds()))
    message = f"budget '{budget.name}' is exhausted ({what}); it resets at {end.isoformat()}"
    return RateLimitError(message, headers={"retry-after": str(seconds)}, retryable=False)


@transaction.atomic
def budget_reserve_sync(
    budgets: tuple[BudgetConfig, ...], usd: Decimal, tokens: int, now: datetime
) -> tuple[list[Reservation], list[str]]:
    """Reserve on every budget or on none; returns the reservations and soft-threshold warnings."""
    reservations: list[Reservation] = []
    warnings: list[str] = []
    for budget in sorted(budgets, key=lambda b: b.id):  # one lock order: no deadlocks between requests
        start, end = period_bounds(budget.period, now)
        BudgetUsage.objects.get_or_create(budget_id=budget.id, period_start=start)
        row = BudgetUsage.objects.select_for_update().get(budget_id=budget.id, period_start=start)
        committed_usd = row.spent_usd + row.reserved_usd
        committed_tokens = row.spent_tokens + row.reserved_tokens
        over_usd = budget.limit_usd is not None and committed_usd + usd > budget.limit_usd
        over_tokens = budget.limit_tokens is not None and committed_tokens + tokens > budget.limit_tokens
        if over_usd or over_tokens:
            raise exhausted_error(budget, end, committed_usd, committed_tokens, usd)
        row.reserved_usd += usd
        row.reserved_tokens += tokens
        row.save(update_fields=["reserved_usd", "reserved_tokens"])
        reservations.append(Reservation(budget.id, start, usd, tokens))
        warnings += soft_warnings(budget, committed_usd + usd, committed_tokens + tokens)
    return reservations, warnings


async def budget_reserve(key: KeyInfo, *, usd: Decimal, tokens: int) -> tuple[list[Reservation], list[str]]:
    """Redis (one Lua script, every process) when configured; else the database row lock."""
    budgets = await budgets_for(key)
    if not budgets:
        return [], []
    if settings.REDIS_URL:
        reserved: tuple[list[Reservation], list[str]] = await _redis_ledger().reserve(
            budgets, usd, tokens, datetime.now(UTC)
        )
        return reserved
    return await db_async(budget_reserve_sync)(budgets, usd, tokens, datetime.now(UTC))


async def budget_settle(reservations: list[Reservation], *, usd: Decimal | None, tokens: int) -> None:
    if not reservations:
        return
    if settings.REDIS_URL:
        await _redis_ledger().settle(reservations, usd, tokens)
        return
    await db_async(budget_settle_sync)(reservations, usd, tokens)


@cache
def _redis_ledger() -> Any:
    from gateway.budget_redis import RedisBudgetLedger

    return RedisBudgetLedger(settings.REDIS_URL)


@transaction.atomic
def budget_settle_sync(reservations: list[Reservation], usd: Decimal | None, tokens: int) -> None:
    """Replace each reservation with the real cost (unknown price: tokens only)."""
    for reservation in sorted(reservations, key=lambda r: r.budget_id):
        row = BudgetUsage.objects.select_for_update().get(
            budget_id=reservation.budget_id, period_start=reservation.period_start
        )
        row.reserved_usd = max(Decimal(0), row.reserved_usd - reservation.usd)
        row.reserved_tokens = max(0, row.reserved_tokens - reservation.tokens)
        row.spent_usd += usd or Decimal(0)
        row.spent_tokens += tokens
        row.save(update_fields=["reserved_usd", "reserved_tokens", "spent_usd", "spent_tokens"])
