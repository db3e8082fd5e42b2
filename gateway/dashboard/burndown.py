"""Budgets as the dashboard shows them: the ledger's spend in the current period, and its burn-down curve.

The headline numbers (spent, reserved, limit) come from the budget's own ledger row (``BudgetUsage`` of the
current period, what admission checks; with Redis the spend is also written there). The curve shows how that
spend accrued over the period, from the usage records of the budget's scope (the key, the user, or the team's
current members), cumulated per hour (a daily budget) or per day. A "total" budget never resets: its curve shows
the last ``TOTAL_CURVE_DAYS`` days, starting from what the ledger had before them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db.models import DecimalField, F, Q, Sum, Value
from django.db.models.functions import Coalesce, TruncHour

from gateway.budgets import period_bounds
from gateway.dashboard.format import usd_money
from gateway.models import Budget, BudgetPeriod, BudgetUsage, UsageRecord

BURNDOWN_MAX = 12
BUDGETS_MAX = 500
TOTAL_CURVE_DAYS = 30
_PERIODS = tuple(p.value for p in BudgetPeriod)
_COST: DecimalField[Decimal, Decimal] = DecimalField(max_digits=20, decimal_places=8)


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    id: int
    name: str
    scope_kind: str  # "user" | "key" | "team"
    scope: str  # the username, key prefix or team name
    scope_id: int
    period: str
    period_start: datetime
    period_end: datetime | None  # None: a total budget
    limit_usd: Decimal | None
    limit_tokens: int | None
    spent_usd: Decimal
    spent_tokens: int
    reserved_usd: Decimal
    reserved_tokens: int
    soft_threshold: Decimal

    @property
    def unit(self) -> str:
        """What the burn-down is drawn in: USD when the budget has a USD limit, else tokens."""
        return "usd" if self.limit_usd is not None else "tokens"

    @property
    def fraction(self) -> float:
        """The larger of the used fractions of the USD and token limits (0 when neither limit is positive)."""
        parts = [0.0]
        if self.limit_usd:
            parts.append(float(self.spent_usd / self.limit_usd))
        if self.limit_tokens:
            parts.append(self.spent_tokens / self.limit_tokens)
        return max(parts)

    @property
    def percent(self) -> float:
        return round(min(self.fraction, 9.99) * 100, 1)

    @property
    def spent_text(self) -> str:
        return usd_money(self.spent_usd)

    @property
    def limit_text(self) -> str:
        return "" if self.limit_usd is None else usd_money(self.limit_usd)

    @property
    def reserved_text(self) -> str:
        return usd_money(self.reserved_usd)

    @property
    def bar_percent(self) -> float:
        """The progress bar's width (capped at 100)."""
        return min(100.0, self.percent)

    @property
    def state(self) -> str:
        if self.fraction >= 1:
            return "exhausted"
        return "warning" if self.fraction >= float(self.soft_threshold) else "ok"


@dataclass(frozen=True, slots=True)
class Burndown:
    budget: BudgetStatus
    labels: tuple[str, ...]
    spent: tuple[float | None, ...]  # cumulative at each label; None in the future
    pace: tuple[float | None, ...]  # an even spend from 0 at the start to the limit at the end (None: total)
    limit: float


def budget_statuses(*, user_id: int | None = None, now: datetime | None = None) -> list[BudgetStatus]:
    """Enabled budgets with their current period's ledger; with ``user_id`` only those that apply to that user's
    requests (their own, their keys', their teams')."""
    now = now or datetime.now(UTC)
    budgets = Budget.objects.filter(enabled=True).select_related("user", "api_key", "group")
    if user_id is not None:
        in_groups = get_user_model().groups.through.objects.filter(user_id=user_id).values("group_id")
        budgets = budgets.filter(Q(user_id=user_id) | Q(api_key__user_id=user_id) | Q(group_id__in=in_groups))
    rows = list(budgets.order_by("name", "id")[:BUDGETS_MAX])
    starts = {period: period_bounds(period, now) for period in _PERIODS}
    ledgers = {
        (u.budget_id, u.period_start): u
        for u in BudgetUsage.objects.filter(
            budget_id__in=[b.pk for b in rows], period_start__in={s for s, _ in starts.values()}
        )
    }
    out = []
    for budget in rows:
        start, end = starts.get(budget.period, starts[BudgetPeriod.TOTAL])
        ledger = ledgers.get((budget.pk, start))
        if budget.api_key_id is not None and budget.api_key is not None:
            kind, scope, scope_id = "key", budget.api_key.prefix, budget.api_key_id
        elif budget.group_id is not None and budget.group is not None:
            kind, scope, scope_id = "team", budget.group.name, budget.group_id
        else:
            kind, scope = "user", budget.user.get_username() if budget.user else "?"
            scope_id = budget.user_id or 0
        out.append(
            BudgetStatus(
                id=budget.pk,
                name=budget.name,
                scope_kind=kind,
                scope=scope,
                scope_id=scope_id,
                period=budget.period,
                period_start=start,
                period_end=end,
                limit_usd=budget.limit_usd,
                limit_tokens=budget.limit_tokens,
                spent_usd=ledger.spent_usd if ledger else Decimal(0),
                spent_tokens=ledger.spent_tokens if ledger else 0,
                reserved_usd=ledger.reserved_usd if ledger else Decimal(0),
                reserved_tokens=ledger.reserved_tokens if ledger else 0,
                soft_threshold=Decimal(budget.soft_threshold),
            )
        )
    return out


def _steps(status: BudgetStatus, now: datetime) -> tuple[datetime, timedelta, int]:
    """Where the curve starts, its step, and how many steps it has."""
    if status.period_end is None:
        start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        start -= timedelta(days=TOTAL_CURVE_DAYS - 1)
        return start, timedelta(days=1), TOTAL_CURVE_DAYS
    step = timedelta(hours=1) if status.period == BudgetPeriod.DAY else timedelta(days=1)
    return status.period_start, step, int((status.period_end - status.period_start) / step)


def budget_burndown(
    *, statuses: list[BudgetStatus], now: datetime | None = None, limit: int = BURNDOWN_MAX
) -> list[Burndown]:
    """Burn-down curves of the ``limit`` budgets closest to (or past) their limit, in two queries."""
    now = now or datetime.now(UTC)
    chosen = sorted(statuses, key=lambda s: (-s.fraction, s.name, s.id))[:limit]
    if not chosen:
        return []
    teams = {s.scope_id for s in chosen if s.scope_kind == "team"}
    members: dict[int, set[int]] = defaultdict(set)
    if teams:
        through = get_user_model().groups.through.objects.filter(group_id__in=teams)
        for group_id, member in through.values_list("group_id", "user_id"):
            members[group_id].add(member)
    users = {s.scope_id for s in chosen if s.scope_kind == "user"} | {m for ids in members.values() for m in ids}
    keys = {s.scope_id for s in chosen if s.scope_kind == "key"}
    since = min(_steps(s, now)[0] for s in chosen)
    hourly = (
        UsageRecord.objects.filter(kind="request", created_at__gte=since, created_at__lt=now + timedelta(seconds=1))
        .filter(Q(user_id__in=users) | Q(api_key_id__in=keys))
        .annotate(hour=TruncHour("created_at", tzinfo=UTC))
        .values("hour", "user_id", "api_key_id")
        .annotate(
            usd=Coalesce(Sum("cost_usd"), Value(Decimal(0)), output_field=_COST),
            tokens=Coalesce(
                Sum(F("input_tokens") + F("output_tokens") + F("cache_read_tokens") + F("cache_write_tokens")), 0
            ),
        )
    )
    spend = [(h["hour"].astimezone(UTC), h["user_id"], h["api_key_id"], h["usd"], int(h["tokens"])) for h in hourly]
    out = []
    for status in chosen:
        if status.scope_kind == "key":
            mine = [(at, usd, tok) for at, _, key, usd, tok in spend if key == status.scope_id]
        else:
            who = members[status.scope_id] if status.scope_kind == "team" else {status.scope_id}
            mine = [(at, usd, tok) for at, user, _, usd, tok in spend if user in who]
        out.append(_curve(status, mine, now))
    return out


def _curve(status: BudgetStatus, spend: list[tuple[datetime, Decimal, int]], now: datetime) -> Burndown:
    start, step, count = _steps(status, now)
    usd = status.unit == "usd"
    per_step = [0.0] * count
    for at, cost, tokens in spend:
        index = int((at - start) / step)
        if 0 <= index < count:
            per_step[index] += float(cost) if usd else float(tokens)
    limit = float(status.limit_usd if usd and status.limit_usd is not None else status.limit_tokens or 0)
    baseline = 0.0
    if status.period_end is None:  # total: what the ledger held before the curve's first day
        ledger = float(status.spent_usd) if usd else float(status.spent_tokens)
        baseline = max(0.0, ledger - sum(per_step))
    fmt = "%H:00" if step < timedelta(days=1) else "%m-%d"
    labels: list[str] = []
    spent: list[float | None] = []
    pace: list[float | None] = []
    running = baseline
    for index in range(count):  # point i: the cumulative spend through step i (labelled by the step's start)
        at = start + step * index
        running += per_step[index]
        labels.append(at.strftime(fmt))
        spent.append(running if at <= now else None)
        pace.append(limit * (index + 1) / count if status.period_end is not None else None)
    return Burndown(status, tuple(labels), tuple(spent), tuple(pace), limit)
