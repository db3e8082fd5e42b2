"""Reads behind the dashboard pages: aggregated in the database, bounded in size.

Every query is limited to the page's time window (at most ``window.MAX_DAYS`` days) and aggregates there
(``values`` + ``annotate`` with ``Count``/``Sum`` and ``TruncHour``/``TruncDay`` in UTC), or returns a top-N.
The one exception is latency percentiles, which SQLite cannot compute: they are computed in Python over at most
``MAX_LATENCY_SAMPLES`` latencies of the window, an even sample (every k-th row by id) when there are more.
Passing ``user_id`` restricts every read to that user's own rows: /me/ always passes the logged-in user's id.
Everything runs on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from asgiref.sync import async_to_sync
from django.db.models import Count, DecimalField, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, Mod, TruncDay, TruncHour

from gateway.breakers import breaker_store
from gateway.dashboard.format import usd_exact, usd_money
from gateway.dashboard.pivot import DailyRow, latency_by_bucket
from gateway.dashboard.window import DAY, TimeWindow
from gateway.metrics import BREAKER_VALUES, percentiles
from gateway.models import UsageDaily, UsageRecord
from providers.models import Provider
from providers.resilience import BreakerState

logger = logging.getLogger(__name__)

MAX_LATENCY_SAMPLES = 50_000
RECENT_LIMIT = 50
TOP_SESSIONS = 10
TOP_RULES = 100
_COST: DecimalField[Decimal, Decimal] = DecimalField(max_digits=20, decimal_places=8)


@dataclass(frozen=True, slots=True)
class Bucket:
    start: datetime
    requests: int
    errors: int
    cache_hits: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    unpriced: int


@dataclass(frozen=True, slots=True)
class Latency:
    p50: tuple[float | None, ...]  # one per bucket of the window
    p95: tuple[float | None, ...]
    requests: int  # answered requests in the window
    samples: int  # how many of them the percentiles are computed over
    overall_p50: int | None
    overall_p95: int | None


@dataclass(frozen=True, slots=True)
class SessionCost:
    session_id: int
    external_id: str
    username: str
    requests: int
    tokens: int
    cost_usd: Decimal
    unpriced: int
    last_seen_at: datetime

    @property
    def cost_text(self) -> str:
        return usd_money(self.cost_usd)


@dataclass(frozen=True, slots=True)
class RuleCount:
    rule: str
    provider: str
    requests: int


@dataclass(frozen=True, slots=True)
class RecentRequest:
    created_at: datetime
    request_id: str
    username: str | None  # None: the user was deleted
    key_prefix: str | None  # None: no key (or the key was deleted)
    client_model: str
    provider: str
    upstream_model: str
    status: int
    error_type: str
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal | None
    latency_ms: int
    cache_hit: bool

    @property
    def cost_text(self) -> str:
        return usd_exact(self.cost_usd)

    @property
    def cost_full(self) -> str:
        """The stored cost with all its decimals ("" when unknown), for a data attribute and the tooltip."""
        return "" if self.cost_usd is None else f"{Decimal(self.cost_usd).normalize():f}"


@dataclass(frozen=True, slots=True)
class BreakerRow:
    provider: str
    provider_id: int
    state: str
    value: int  # 0 closed, 1 half-open, 2 open (as in /metrics/circuit-breakers)
    failures: int
    enabled: bool


def _requests(*, window: TimeWindow, user_id: int | None) -> QuerySet[UsageRecord]:
    """Client requests (not upstream attempts) of the window, optionally of one user only."""
    rows = UsageRecord.objects.filter(kind="request", created_at__gte=window.start, created_at__lt=window.end)
    return rows if user_id is None else rows.filter(user_id=user_id)


def _trunc(bucket: str) -> TruncHour | TruncDay:
    return TruncHour("created_at", tzinfo=UTC) if bucket == "hour" else TruncDay("created_at", tzinfo=UTC)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _sums() -> dict[str, Any]:
    return {
        "n_requests": Count("id"),
        # The rollup's definition of an error (gateway/usage_services.py), so both sources agree.
        "n_errors": Count("id", filter=~Q(status=200)),
        "sum_input": Coalesce(Sum("input_tokens"), 0),
        "sum_output": Coalesce(Sum("output_tokens"), 0),
        "sum_cost": Coalesce(Sum("cost_usd"), Value(Decimal(0)), output_field=_COST),
        "n_unpriced": Count("id", filter=Q(cost_usd__isnull=True)),
    }


def usage_timeseries(*, window: TimeWindow, user_id: int | None = None) -> list[Bucket]:
    """Requests, errors, response-cache hits, tokens and spend per bucket of the window (zeros where none)."""
    grouped = (
        _requests(window=window, user_id=user_id)
        .annotate(bucket=_trunc(window.bucket))
        .values("bucket")
        .annotate(**_sums(), n_cache_hits=Count("id", filter=Q(cache_hit=True)))
    )
    found = {_utc(g["bucket"]): g for g in grouped}
    out = []
    for start in window.buckets():
        g = found.get(start)
        if g is None:
            out.append(Bucket(start, 0, 0, 0, 0, 0, Decimal(0), 0))
            continue
        out.append(
            Bucket(
                start=start,
                requests=g["n_requests"],
                errors=g["n_errors"],
                cache_hits=g["n_cache_hits"],
                input_tokens=g["sum_input"],
                output_tokens=g["sum_output"],
                cost_usd=Decimal(g["sum_cost"]),
                unpriced=g["n_unpriced"],
            )
        )
    return out


def latency_percentiles(*, window: TimeWindow, user_id: int | None = None) -> Latency:
    """p50/p95 of the whole-request latency per bucket, over the requests that were answered (a refusal before
    routing, e.g. by a budget, takes microseconds and would otherwise drag the median down)."""
    answered = _requests(window=window, user_id=user_id).exclude(provider="")
    total = answered.count()
    if total > MAX_LATENCY_SAMPLES:
        # Rows whose id is a multiple of a prime: ids grow with time, so the sample spreads over the window.
        answered = answered.annotate(sample=Mod("id", sampling_modulus(total))).filter(sample=0)
    samples = [
        (_utc(when), int(ms)) for when, ms in answered.values_list("created_at", "latency_ms")[:MAX_LATENCY_SAMPLES]
    ]
    p50, p95, count = latency_by_bucket(samples=samples, buckets=window.buckets(), bucket=window.bucket)
    overall = percentiles([ms for _, ms in samples], (50, 95))
    return Latency(p50, p95, total, count, overall["p50"], overall["p95"])


def sampling_modulus(total: int) -> int:
    """The smallest prime of at least 7 and ``total / MAX_LATENCY_SAMPLES``. A prime because request ids are not
    random: a flush writes each request's row followed by one row per upstream attempt, so with one attempt per
    request every request id has the same parity, and ``id % 2 == 0`` would sample none or all of them."""
    candidate = max(7, math.ceil(total / MAX_LATENCY_SAMPLES))
    while any(candidate % d == 0 for d in range(2, math.isqrt(candidate) + 1)):
        candidate += 1
    return candidate


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _runs(days: list[date]) -> list[tuple[datetime, datetime]]:
    """Consecutive days merged into [start, end) ranges."""
    runs: list[tuple[datetime, datetime]] = []
    for day in sorted(days):
        start = _midnight(day)
        if runs and runs[-1][1] == start:
            runs[-1] = (runs[-1][0], start + DAY)
        else:
            runs.append((start, start + DAY))
    return runs


def _daily_row(g: dict[str, Any], day: date) -> DailyRow:
    return DailyRow(
        day=day,
        user=g["user__username"] or "(deleted user)",
        key=g["api_key__prefix"] or "(no key)",
        provider=g["provider"] or "(none)",
        model=g["client_model"] or "(none)",
        requests=g["n_requests"],
        errors=g["n_errors"],
        input_tokens=int(g["sum_input"]),
        output_tokens=int(g["sum_output"]),
        cost_usd=Decimal(g["sum_cost"]),
        unpriced=g["n_unpriced"],
    )


_DIMS = ("user__username", "api_key__prefix", "provider", "client_model")


def usage_daily_rows(*, window: TimeWindow, user_id: int | None = None, now: datetime | None = None) -> list[DailyRow]:
    """Usage per UTC day and (user, key, provider, client model) over the window.

    The daily rollup (``UsageDaily``) answers for whole days it has rows for, once they are final: the beat task
    rebuilds today and yesterday every ten minutes, so only days before yesterday are read from it. Every other
    day (today, yesterday, partial days at the window's edges, days the rollup never ran for) is aggregated from
    the usage records themselves, so the page is right with or without Celery beat, and days whose records the
    retention already deleted still show."""
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    whole = [
        d for d in window.days()
        if _midnight(d) >= window.start and _midnight(d) + DAY <= window.end and d < today - timedelta(days=1)
    ]  # fmt: skip
    rollup = UsageDaily.objects.filter(day__in=whole)
    if user_id is not None:
        rollup = rollup.filter(user_id=user_id)
    rolled = sorted(rollup.order_by().values_list("day", flat=True).distinct()) if whole else []
    rows: list[DailyRow] = []
    if rolled:
        grouped = (
            rollup.filter(day__in=rolled)
            .values("day", *_DIMS)
            .annotate(
                n_requests=Sum("requests"),
                n_errors=Sum("errors"),
                sum_input=Sum("input_tokens"),
                sum_output=Sum("output_tokens"),
                sum_cost=Sum("cost_usd"),
                n_unpriced=Sum("unpriced_requests"),
            )
        )
        rows += [_daily_row(g, g["day"]) for g in grouped]
    records = _requests(window=window, user_id=user_id)
    for start, end in _runs(rolled):
        records = records.exclude(created_at__gte=start, created_at__lt=end)
    grouped = records.annotate(bucket=TruncDay("created_at", tzinfo=UTC)).values("bucket", *_DIMS).annotate(**_sums())
    rows += [_daily_row(g, _utc(g["bucket"]).date()) for g in grouped]
    return rows


def sessions_top_by_cost(
    *, window: TimeWindow, user_id: int | None = None, limit: int = TOP_SESSIONS
) -> list[SessionCost]:
    """The Claude Code sessions (``X-Claude-Code-Session-Id``) that cost most within the window."""
    grouped = (
        _requests(window=window, user_id=user_id)
        .filter(session__isnull=False)
        .values("session_id", "session__external_id", "session__user__username", "session__last_seen_at")
        .annotate(
            cost=Coalesce(Sum("cost_usd"), Value(Decimal(0)), output_field=_COST),
            n_requests=Count("id"),
            tokens=Coalesce(Sum(F("input_tokens") + F("output_tokens")), 0),
            n_unpriced=Count("id", filter=Q(cost_usd__isnull=True)),
        )
        .order_by("-cost", "-n_requests", "session_id")[:limit]
    )
    return [
        SessionCost(
            session_id=g["session_id"],
            external_id=g["session__external_id"],
            username=g["session__user__username"],
            requests=g["n_requests"],
            tokens=int(g["tokens"]),
            cost_usd=Decimal(g["cost"]),
            unpriced=g["n_unpriced"],
            last_seen_at=g["session__last_seen_at"],
        )
        for g in grouped
    ]


def rule_label(rule: str, provider: str) -> str:
    if rule:
        return rule
    if provider == "cache":
        return "(response cache)"
    return "(not routed)" if not provider else "(no rule)"


def routing_decisions_by_rule(*, window: TimeWindow, user_id: int | None = None) -> list[RuleCount]:
    """How many requests each routing rule sent to each provider (most first)."""
    grouped = (
        _requests(window=window, user_id=user_id)
        .values("route_rule", "provider")
        .annotate(n=Count("id"))
        .order_by("-n", "route_rule", "provider")[:TOP_RULES]
    )
    return [RuleCount(rule_label(g["route_rule"], g["provider"]), g["provider"], g["n"]) for g in grouped]


def requests_recent(
    *, window: TimeWindow, user_id: int | None = None, limit: int = RECENT_LIMIT
) -> list[RecentRequest]:
    fields = [f.name for f in dataclasses.fields(RecentRequest)]
    renamed = {"username": "user__username", "key_prefix": "api_key__prefix"}
    rows = (
        _requests(window=window, user_id=user_id)
        .order_by("-created_at", "-id")
        .values(*(renamed.get(name, name) for name in fields))[:limit]
    )
    return [RecentRequest(**{name: r[renamed.get(name, name)] for name in fields}) for r in rows]


def breaker_states_list() -> tuple[list[BreakerRow], str]:
    """Each provider's circuit breaker from the store /metrics/circuit-breakers reads (Redis when configured, so
    shared by every process; else this process's), and an error message when the store could not be read."""
    providers = list(Provider.objects.order_by("priority", "name").values_list("id", "name", "enabled"))
    try:
        states: dict[int, BreakerState] = async_to_sync(breaker_store().all)()
    except Exception as exc:  # Redis down must not take the whole dashboard down
        logger.warning("dashboard: circuit breaker states unavailable", exc_info=True)
        states, error = {}, f"{type(exc).__name__}: {exc}"[:300]
    else:
        error = ""
    known = {pk for pk, _, _ in providers}
    rows = []
    for pk, name, enabled in [*providers, *((pk, f"provider-{pk}", False) for pk in states if pk not in known)]:
        state = states.get(pk, BreakerState())
        rows.append(BreakerRow(name, pk, state.state, BREAKER_VALUES.get(state.state, 0), state.failures, enabled))
    return rows, error
