"""Budgets: calendar periods (pure), reserve/settle under the row lock, and the 429s /v1/messages gives.

The multi-process PostgreSQL proof lives elsewhere; here concurrency is 20 requests in one process (the ORM calls
are serialised on asgiref's thread, SQLite serialises writers), which still proves admission never over-commits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group, User
from django.test import AsyncClient

from gateway import budgets as budgets_module
from gateway.accounting import usage_buffer
from gateway.budgets import BudgetConfig, budget_reserve_sync, budget_settle_sync, budgets_for_sync, period_bounds
from gateway.lifecycle import settled
from gateway.metering import usage_flush
from gateway.models import ApiKey, Budget, BudgetUsage, PriceEntry, RateLimit, UsageRecord
from gateway.services import apikey_create
from gateway.wire.errors import RateLimitError
from providers.models import Provider
from providers.snapshot import routing_snapshot_get
from tests.mocks.anthropic_upstream import MockAnthropicUpstream, ScriptedResponse, stream_events

HELLO = {"model": "claude-sonnet-5", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# --- period_bounds (pure) ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "now", "start", "end"),
    [
        ("day", utc(2026, 11, 26, 15, 30), utc(2026, 11, 26), utc(2026, 11, 27)),
        ("day", utc(2026, 11, 26), utc(2026, 11, 26), utc(2026, 11, 27)),  # midnight belongs to the new day
        ("day", utc(2026, 12, 31, 23, 59, 59), utc(2026, 12, 31), utc(2027, 1, 1)),
        ("week", utc(2026, 11, 26, 9), utc(2026, 11, 23), utc(2026, 11, 30)),  # Thursday -> Monday
        ("week", utc(2026, 11, 30), utc(2026, 11, 30), utc(2026, 12, 7)),  # a Monday starts its own week
        ("week", utc(2026, 11, 29, 23, 59), utc(2026, 11, 23), utc(2026, 11, 30)),  # Sunday is the last day
        ("week", utc(2026, 1, 1, 12), utc(2025, 12, 29), utc(2026, 1, 5)),  # a week across the new year
        ("month", utc(2026, 11, 26, 15), utc(2026, 11, 1), utc(2026, 12, 1)),
        ("month", utc(2026, 12, 31, 23, 59), utc(2026, 12, 1), utc(2027, 1, 1)),  # year rollover
        ("month", utc(2026, 1, 31), utc(2026, 1, 1), utc(2026, 2, 1)),
        ("month", utc(2026, 2, 28, 12), utc(2026, 2, 1), utc(2026, 3, 1)),
        ("month", utc(2028, 2, 29, 12), utc(2028, 2, 1), utc(2028, 3, 1)),  # leap year
        ("month", utc(2026, 3, 1), utc(2026, 3, 1), utc(2026, 4, 1)),
    ],
)
def test_period_bounds(period: str, now: datetime, start: datetime, end: datetime) -> None:
    assert period_bounds(period, now) == (start, end)


def test_every_month_of_several_years_is_contiguous() -> None:
    now = utc(2025, 1, 15)
    for _ in range(48):
        start, end = period_bounds("month", now)
        assert start.day == 1 and end is not None and end.day == 1
        assert start <= now < end
        assert period_bounds("month", end)[0] == end  # the next period starts where this one ends
        now = end + timedelta(days=14)


def test_periods_are_computed_in_utc() -> None:
    # 01:00 on December 1st at UTC+2 is still November in UTC.
    local = datetime(2026, 12, 1, 1, 0, tzinfo=timezone(timedelta(hours=2)))
    assert period_bounds("month", local) == (utc(2026, 11, 1), utc(2026, 12, 1))
    assert period_bounds("day", local) == (utc(2026, 11, 30), utc(2026, 12, 1))


def test_total_never_resets() -> None:
    start, end = period_bounds("total", utc(2026, 11, 26))
    assert end is None
    assert start == period_bounds("total", utc(2031, 1, 1))[0]  # one row forever


# --- reserve / settle (services) --------------------------------------------------------------------------------------


def config(budget: Budget) -> BudgetConfig:
    return BudgetConfig(
        budget.pk, budget.name, budget.period, budget.limit_usd, budget.limit_tokens, Decimal(budget.soft_threshold)
    )


def usage_of(budget: Budget) -> BudgetUsage:
    return BudgetUsage.objects.get(budget=budget)


@pytest.fixture
def owner() -> User:
    return User.objects.create_user(username="budget-owner", password="x" * 12)


@pytest.mark.django_db
def test_reserve_then_settle_replaces_the_reservation_with_the_real_cost(owner: User) -> None:
    budget = Budget.objects.create(name="b", user=owner, period="day", limit_usd=Decimal(1), limit_tokens=10_000)
    now = datetime.now(UTC)
    reservations, warnings = budget_reserve_sync((config(budget),), Decimal("0.25"), 1000, now)
    assert warnings == []
    row = usage_of(budget)
    assert (row.reserved_usd, row.reserved_tokens, row.spent_usd, row.spent_tokens) == (Decimal("0.25"), 1000, 0, 0)
    assert row.period_start == period_bounds("day", now)[0]
    budget_settle_sync(reservations, Decimal("0.1"), 400)
    row = usage_of(budget)
    assert (row.reserved_usd, row.reserved_tokens) == (0, 0)
    assert (row.spent_usd, row.spent_tokens) == (Decimal("0.1"), 400)


@pytest.mark.django_db
def test_settle_with_an_unknown_price_counts_tokens_only(owner: User) -> None:
    budget = Budget.objects.create(name="b", user=owner, limit_usd=Decimal(1), limit_tokens=10_000)
    reservations, _ = budget_reserve_sync((config(budget),), Decimal(0), 500, datetime.now(UTC))
    budget_settle_sync(reservations, None, 700)
    row = usage_of(budget)
    assert (row.spent_usd, row.spent_tokens, row.reserved_tokens) == (0, 700, 0)


@pytest.mark.django_db
def test_a_request_that_would_cross_the_limit_is_refused_and_nothing_is_reserved(owner: User) -> None:
    budget = Budget.objects.create(name="cap", user=owner, period="day", limit_tokens=1000)
    now = datetime.now(UTC)
    budget_reserve_sync((config(budget),), Decimal(0), 600, now)
    with pytest.raises(RateLimitError) as refused:
        budget_reserve_sync((config(budget),), Decimal(0), 600, now)
    assert "cap" in refused.value.message and "600 of 1000 tokens" in refused.value.message
    assert refused.value.retryable is False
    assert usage_of(budget).reserved_tokens == 600
    budget_reserve_sync((config(budget),), Decimal(0), 400, now)  # exactly up to the limit is allowed
    assert usage_of(budget).reserved_tokens == 1000


@pytest.mark.django_db
def test_reservation_is_all_or_nothing_across_budgets(owner: User) -> None:
    roomy = Budget.objects.create(name="a-roomy", user=owner, limit_tokens=1_000_000)
    tight = Budget.objects.create(name="z-tight", user=owner, limit_tokens=10)
    with pytest.raises(RateLimitError):
        budget_reserve_sync((config(roomy), config(tight)), Decimal(0), 100, datetime.now(UTC))
    # The roomy budget's reservation was rolled back with the refusal (one transaction).
    assert BudgetUsage.objects.filter(budget=roomy, reserved_tokens__gt=0).count() == 0


@pytest.mark.django_db
def test_usd_limit_refuses_and_soft_threshold_warns(owner: User) -> None:
    budget = Budget.objects.create(name="dollars", user=owner, limit_usd=Decimal(1), soft_threshold=Decimal("0.5"))
    now = datetime.now(UTC)
    _, warnings = budget_reserve_sync((config(budget),), Decimal("0.4"), 10, now)
    assert warnings == []
    _, warnings = budget_reserve_sync((config(budget),), Decimal("0.2"), 10, now)
    assert warnings == ["dollars: 60% of the USD limit"]
    with pytest.raises(RateLimitError) as refused:
        budget_reserve_sync((config(budget),), Decimal("0.5"), 10, now)
    assert "$0.6000 of $1" in refused.value.message


@pytest.mark.django_db
def test_a_reservation_settles_in_its_own_period_even_after_a_rollover(owner: User) -> None:
    budget = Budget.objects.create(name="daily", user=owner, period="day", limit_tokens=1000)
    day1 = utc(2026, 11, 26, 23, 59, 59)
    reservations, _ = budget_reserve_sync((config(budget),), Decimal(0), 900, day1)
    # The next day starts with an empty row while yesterday's request is still in flight.
    budget_reserve_sync((config(budget),), Decimal(0), 900, utc(2026, 11, 27, 0, 0, 1))
    budget_settle_sync(reservations, Decimal(0), 50)
    day1_row = BudgetUsage.objects.get(budget=budget, period_start=utc(2026, 11, 26))
    day2_row = BudgetUsage.objects.get(budget=budget, period_start=utc(2026, 11, 27))
    assert (day1_row.reserved_tokens, day1_row.spent_tokens) == (0, 50)
    assert (day2_row.reserved_tokens, day2_row.spent_tokens) == (900, 0)


@pytest.mark.django_db
def test_the_budgets_that_apply_are_the_keys_the_users_and_the_teams(owner: User) -> None:
    team, other_team = Group.objects.create(name="team"), Group.objects.create(name="other")
    owner.groups.add(team)
    stranger = User.objects.create_user(username="stranger", password="x" * 12)
    key = ApiKey.objects.get(prefix=apikey_create(user=owner).prefix)
    other_key = ApiKey.objects.get(prefix=apikey_create(user=owner).prefix)
    wanted = {
        Budget.objects.create(name="key", api_key=key, limit_tokens=1).pk,
        Budget.objects.create(name="user", user=owner, limit_tokens=1).pk,
        Budget.objects.create(name="team", group=team, limit_tokens=1).pk,
    }
    Budget.objects.create(name="other key", api_key=other_key, limit_tokens=1)
    Budget.objects.create(name="other team", group=other_team, limit_tokens=1)
    Budget.objects.create(name="stranger", user=stranger, limit_tokens=1)
    Budget.objects.create(name="disabled", user=owner, limit_tokens=1, enabled=False)
    found = budgets_for_sync(key.pk, owner.pk, frozenset({team.pk}))
    assert {b.id for b in found} == wanted


@pytest.mark.django_db
def test_budget_must_attach_to_exactly_one_owner_and_have_a_limit(owner: User) -> None:
    from django.core.exceptions import ValidationError

    team = Group.objects.create(name="t")
    with pytest.raises(ValidationError):
        Budget(name="none", limit_usd=Decimal(1)).clean()
    with pytest.raises(ValidationError):
        Budget(name="two", user=owner, group=team, limit_usd=Decimal(1)).clean()
    with pytest.raises(ValidationError):
        Budget(name="no limit", user=owner).clean()
    Budget(name="ok", group=team, limit_tokens=5).clean()


# --- through /v1/messages ---------------------------------------------------------------------------------------------


@pytest.fixture
def api(settings: Any) -> Iterator[None]:
    """In memory (no Redis), only explicit usage flushes, no leftover rows from other tests, no seeded prices."""
    settings.REDIS_URL = ""
    settings.LYNKR_USAGE_FLUSH_INTERVAL = 3600
    usage_buffer.clear()
    PriceEntry.objects.all().delete()  # each test states its prices: seeded rows come and go with DB flushes
    yield
    usage_buffer.clear()


@pytest.fixture
def user(api: None) -> User:
    return User.objects.create_user(username="spender", password="x" * 12)


@pytest.fixture
def key(user: User) -> str:
    return apikey_create(user=user).secret


@pytest.fixture
def provider(upstream: MockAnthropicUpstream) -> Provider:
    return Provider.objects.create(name="up", kind="anthropic", base_url=upstream.url, model_override="upstream-model")


async def post(key: str, body: Any, **headers: str) -> Any:
    """The answer, once its billing has settled: a successful answer is billed just after it is sent
    (gateway/lifecycle.py settle_soon), and these tests read or depend on the budget it settled."""
    response = await AsyncClient().post(
        "/v1/messages?beta=true",
        orjson.dumps(body),
        content_type="application/json",
        headers={"x-api-key": key, **headers},
    )
    await settled()
    return response


@pytest.fixture
def concurrent_db(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Real threads on PostgreSQL; one database thread on pytest-django's in-memory SQLite test database, whose
    shared-cache connections refuse concurrent writers at once ("database table is locked", no busy timeout)
    where a file database waits (WAL + IMMEDIATE + busy_timeout, lynkr_site/env.py)."""
    from django.db import connection

    try:
        from gateway import db
    except ImportError:  # before the bounded database pool existed: one thread already
        yield
        return
    if connection.vendor != "sqlite" or not connection.is_in_memory_db():
        yield
        return
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-db")
    monkeypatch.setattr(db, "_executor", lambda: pool)
    yield
    pool.shutdown(wait=True)


def estimate(body: dict[str, Any]) -> int:
    """What admission reserves for input: ~4 bytes per token of the request body."""
    return len(orjson.dumps(body)) // 4


@sync_to_async
def make_budget(**fields: Any) -> Budget:
    return Budget.objects.create(**fields)


async def usage_rows(budget: Budget) -> list[BudgetUsage]:
    await settled()  # a streamed answer is billed after its last event
    return await sync_to_async(lambda: list(BudgetUsage.objects.filter(budget=budget)))()


async def request_records() -> list[UsageRecord]:
    await settled()
    return await sync_to_async(lambda: list(UsageRecord.objects.filter(kind="request").order_by("id")))()


def error_of(response: Any) -> dict[str, Any]:
    body = orjson.loads(response.content)
    assert body["type"] == "error"
    return dict(body["error"])


api_db = pytest.mark.django_db(transaction=True)


@api_db
async def test_a_request_reserves_at_admission_and_settles_to_the_real_usage(
    key: str, user: User, provider: Provider, upstream: MockAnthropicUpstream, settings: Any
) -> None:
    settings.LYNKR_BUDGET_OUTPUT_RESERVATION = 50
    budget = await make_budget(name="mine", user=user, period="month", limit_tokens=1_000_000)
    body = {**HELLO, "stream": True, "messages": [{"role": "user", "content": "__slow"}]}
    response = await post(key, body)
    assert response.status_code == 200
    started = asyncio.Event()

    async def client() -> None:
        async for _ in response.streaming_content:
            started.set()

    reader = asyncio.create_task(client())
    await asyncio.wait_for(started.wait(), 10)  # the answer has started and hangs: the request is in flight
    (row,) = await usage_rows(budget)
    # input estimate + min(max_tokens=64, LYNKR_BUDGET_OUTPUT_RESERVATION=50)
    assert (row.reserved_tokens, row.spent_tokens) == (estimate(body) + 50, 0)
    assert row.period_start == period_bounds("month", datetime.now(UTC))[0]
    reader.cancel()  # the client goes away (ASGI cancels the task that sends the body)
    with pytest.raises(asyncio.CancelledError):
        await reader
    await usage_flush()
    (row,) = await usage_rows(budget)
    (record,) = await request_records()
    real = record.input_tokens + record.output_tokens + record.cache_read_tokens + record.cache_write_tokens
    assert real > 0
    assert (row.reserved_tokens, row.spent_tokens) == (0, real)


@api_db
async def test_output_reservation_is_max_tokens_when_smaller(
    key: str, user: User, provider: Provider, settings: Any
) -> None:
    settings.LYNKR_BUDGET_OUTPUT_RESERVATION = 4096
    budget = await make_budget(name="mine", user=user, limit_tokens=1_000_000)
    seen: list[int] = []
    original = budgets_module.budget_reserve_sync

    def spy(budgets: Any, usd: Decimal, tokens: int, now: datetime) -> Any:
        seen.append(tokens)
        return original(budgets, usd, tokens, now)

    budgets_module.budget_reserve_sync = spy  # type: ignore[assignment]
    try:
        assert (await post(key, HELLO)).status_code == 200
        big = {**HELLO, "max_tokens": 100_000}
        assert (await post(key, big)).status_code == 200
    finally:
        budgets_module.budget_reserve_sync = original
    assert seen == [estimate(HELLO) + 64, estimate(big) + 4096]
    (row,) = await usage_rows(budget)
    assert row.reserved_tokens == 0 and row.spent_tokens > 0


@api_db
async def test_usd_budget_reconciles_to_the_priced_cost(
    key: str, user: User, provider: Provider, settings: Any
) -> None:
    await sync_to_async(PriceEntry.objects.create)(
        model_pattern="*", input_per_mtok=Decimal(3), output_per_mtok=Decimal(15)
    )
    budget = await make_budget(name="usd", user=user, limit_usd=Decimal(10))
    assert (await post(key, HELLO)).status_code == 200
    await usage_flush()
    (record,) = await request_records()
    (row,) = await usage_rows(budget)
    assert record.cost_usd is not None and record.cost_usd > 0
    assert row.spent_usd == record.cost_usd
    assert (row.reserved_usd, row.reserved_tokens) == (0, 0)
    assert row.spent_tokens == record.input_tokens + record.output_tokens


@api_db
@pytest.mark.parametrize("owner_kind", ["user", "key", "team"])
async def test_exhausted_budget_is_a_429_with_retry_after_until_the_reset(
    owner_kind: str, key: str, user: User, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    if owner_kind == "user":
        owner: dict[str, Any] = {"user": user}
    elif owner_kind == "key":
        owner = {"api_key": await sync_to_async(ApiKey.objects.get)(user=user)}
    else:
        team = await sync_to_async(Group.objects.create)(name="team")
        await sync_to_async(user.groups.add)(team)
        owner = {"group": team}
    await make_budget(name="daily-cap", period="day", limit_tokens=estimate(HELLO) + 64, **owner)
    assert (await post(key, HELLO)).status_code == 200  # exactly fits
    refused = await post(key, HELLO)
    assert refused.status_code == 429
    error = error_of(refused)
    assert error["type"] == "rate_limit_error"
    _, end = period_bounds("day", datetime.now(UTC))
    assert end is not None
    assert "daily-cap" in error["message"] and end.isoformat() in error["message"]
    expected = (end - datetime.now(UTC)).total_seconds()
    assert abs(int(refused.headers["retry-after"]) - expected) <= 2
    assert refused.headers["x-should-retry"] == "false"
    assert len(upstream.messages_requests) == 1  # refused before any upstream call


@api_db
@pytest.mark.parametrize("period", ["week", "month"])
async def test_retry_after_counts_to_the_end_of_the_period(
    period: str, key: str, user: User, provider: Provider
) -> None:
    await make_budget(name=f"{period}-cap", user=user, period=period, limit_tokens=1)
    refused = await post(key, HELLO)
    assert refused.status_code == 429
    _, end = period_bounds(period, datetime.now(UTC))
    assert end is not None
    assert abs(int(refused.headers["retry-after"]) - (end - datetime.now(UTC)).total_seconds()) <= 2
    assert end.isoformat() in error_of(refused)["message"]


@api_db
async def test_exhausted_total_budget_has_no_retry_after(key: str, user: User, provider: Provider) -> None:
    await make_budget(name="lifetime", user=user, period="total", limit_tokens=10)
    refused = await post(key, {**HELLO, "stream": True})
    assert refused.status_code == 429
    error = error_of(refused)
    assert error["type"] == "rate_limit_error"
    assert "lifetime" in error["message"] and "does not reset" in error["message"]
    assert "retry-after" not in refused.headers
    assert refused.headers["x-should-retry"] == "false"


@api_db
async def test_usd_budget_exhausted_by_priced_spend(key: str, user: User, provider: Provider) -> None:
    await sync_to_async(PriceEntry.objects.create)(
        model_pattern="*", input_per_mtok=Decimal(1000), output_per_mtok=Decimal(1000)
    )
    # Each request reserves (estimate + 64) tokens at $1000/Mtok: a budget of exactly that fits one request, and
    # once its real cost is spent the next reservation no longer fits.
    reservation = Decimal(estimate(HELLO) + 64) * 1000 / 1_000_000
    await make_budget(name="dollars", user=user, limit_usd=reservation)
    assert (await post(key, HELLO)).status_code == 200
    refused = await post(key, HELLO)
    assert refused.status_code == 429
    message = error_of(refused)["message"]
    assert "dollars" in message and f"of ${reservation}" in message


@api_db
async def test_soft_threshold_adds_a_warning_header(key: str, user: User, provider: Provider) -> None:
    await make_budget(name="watch", user=user, limit_tokens=200, soft_threshold=Decimal("0.3"))
    quiet = await make_budget(name="quiet", user=user, limit_tokens=1_000_000)
    response = await post(key, HELLO)
    assert response.status_code == 200
    warning = response.headers["x-lynkr-budget-warning"]
    assert warning.startswith("watch: ") and "of the tokens limit" in warning
    assert quiet.name not in warning
    streamed = await post(key, {**HELLO, "stream": True})
    assert "watch" in streamed.headers["x-lynkr-budget-warning"]
    b"".join([chunk async for chunk in streamed.streaming_content])


@api_db
async def test_no_warning_below_the_threshold(key: str, user: User, provider: Provider) -> None:
    await make_budget(name="roomy", user=user, limit_tokens=1_000_000)
    response = await post(key, HELLO)
    assert response.status_code == 200 and "x-lynkr-budget-warning" not in response.headers


@api_db
async def test_unknown_price_counts_tokens_and_never_blocks_a_usd_budget(
    key: str, user: User, provider: Provider
) -> None:
    budget = await make_budget(name="usd-only", user=user, limit_usd=Decimal("0.000001"))
    for _ in range(3):
        assert (await post(key, HELLO)).status_code == 200
    await usage_flush()
    (row,) = await usage_rows(budget)
    assert row.spent_usd == 0 and row.reserved_usd == 0  # never counted as $0 spent... nor as anything
    assert row.spent_tokens > 0
    records = await request_records()
    assert len(records) == 3 and all(r.cost_usd is None for r in records)


@api_db
async def test_unknown_price_still_counts_against_a_token_limit(key: str, user: User, provider: Provider) -> None:
    budget = await make_budget(name="tokens", user=user, limit_usd=Decimal(100), limit_tokens=estimate(HELLO) + 64)
    assert (await post(key, HELLO)).status_code == 200
    refused = await post(key, HELLO)
    assert refused.status_code == 429 and "tokens used or reserved" in error_of(refused)["message"]
    (row,) = await usage_rows(budget)
    assert row.spent_tokens > 0 and row.spent_usd == 0


@api_db
async def test_a_key_budget_binds_only_that_key(user: User, provider: Provider) -> None:
    first = await sync_to_async(apikey_create)(user=user)
    second = await sync_to_async(apikey_create)(user=user)
    first_row = await sync_to_async(ApiKey.objects.get)(prefix=first.prefix)
    await make_budget(name="laptop", api_key=first_row, limit_tokens=1)
    assert (await post(first.secret, HELLO)).status_code == 429
    assert (await post(second.secret, HELLO)).status_code == 200


@api_db
async def test_a_team_budget_is_shared_by_its_members_only(user: User, provider: Provider) -> None:
    team = await sync_to_async(Group.objects.create)(name="platform")
    mate = await sync_to_async(User.objects.create_user)(username="mate", password="x" * 12)
    outsider = await sync_to_async(User.objects.create_user)(username="outsider", password="x" * 12)
    await sync_to_async(user.groups.add)(team)
    await sync_to_async(mate.groups.add)(team)
    keys = [(await sync_to_async(apikey_create)(user=u)).secret for u in (user, mate, outsider)]
    budget = await make_budget(name="team-cap", group=team, limit_tokens=estimate(HELLO) + 64)
    assert (await post(keys[0], HELLO)).status_code == 200
    # The first member's real spend is in the shared row: the second member's reservation no longer fits.
    refused = await post(keys[1], HELLO)
    assert refused.status_code == 429 and "team-cap" in error_of(refused)["message"]
    (row,) = await usage_rows(budget)
    assert row.reserved_tokens == 0 and row.spent_tokens > 0
    assert (await post(keys[2], HELLO)).status_code == 200


@api_db
async def test_a_failed_request_releases_its_reservation(
    key: str, user: User, provider: Provider, settings: Any
) -> None:
    settings.LYNKR_RETRY_MAX_RETRIES = 0
    budget = await make_budget(name="b", user=user, limit_tokens=1_000_000)
    body = {**HELLO, "messages": [{"role": "user", "content": "__error:500:api_error"}]}
    assert (await post(key, body)).status_code == 500
    (row,) = await usage_rows(budget)
    assert (row.reserved_tokens, row.spent_tokens, row.spent_usd) == (0, 0, 0)


@api_db
@pytest.mark.parametrize("unit", ["tokens", "usd"])
async def test_concurrent_requests_never_overcommit_the_budget(
    unit: str,
    key: str,
    user: User,
    provider: Provider,
    upstream: MockAnthropicUpstream,
    settings: Any,
    concurrent_db: None,
) -> None:
    """20 requests at once against a budget that holds about 5 reservations."""
    settings.LYNKR_BUDGET_OUTPUT_RESERVATION = 4096
    per_request_tokens = estimate(HELLO) + 64
    if unit == "usd":
        await sync_to_async(PriceEntry.objects.create)(
            model_pattern="*", input_per_mtok=Decimal(1000), output_per_mtok=Decimal(1000)
        )
        per_request_usd = Decimal(per_request_tokens) * 1000 / 1_000_000  # a round number at the column's 4 places
        budget = await make_budget(name="shared", user=user, limit_usd=per_request_usd * 5)
    else:
        budget = await make_budget(name="shared", user=user, limit_tokens=per_request_tokens * 5)
    assert budget.limit_usd == (await sync_to_async(Budget.objects.get)(pk=budget.pk)).limit_usd  # not rounded
    for _ in range(20):  # answers that take a while, so the requests overlap
        events = stream_events("u", [{"type": "text", "text": "ok"}], "end_turn", 10)
        upstream.enqueue(ScriptedResponse(events=events, chunk_delay=0.03))

    observed: list[tuple[Decimal, int]] = []
    in_flight: list[int] = []
    original = budgets_module.budget_reserve_sync

    def checked(budgets: Any, usd: Decimal, tokens: int, now: datetime) -> Any:
        try:
            return original(budgets, usd, tokens, now)
        finally:
            row = BudgetUsage.objects.get(budget=budget)
            observed.append((row.spent_usd + row.reserved_usd, row.spent_tokens + row.reserved_tokens))
            in_flight.append(row.reserved_tokens // per_request_tokens)

    await routing_snapshot_get()  # built once before the burst (not by 20 requests racing to rebuild it)
    budgets_module.budget_reserve_sync = checked  # type: ignore[assignment]
    try:
        responses = await asyncio.gather(*(post(key, HELLO) for _ in range(20)))
    finally:
        budgets_module.budget_reserve_sync = original
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 429}, statuses
    ok = statuses.count(200)
    assert 5 <= ok < 20, statuses
    assert all(error_of(r)["type"] == "rate_limit_error" for r in responses if r.status_code == 429)
    # After every admission, spend + reservations stayed within the limit (nothing in flight over-committed).
    assert len(observed) == 20
    assert max(in_flight) >= 4, in_flight  # the requests really were admitted while others were in flight
    for committed_usd, committed_tokens in observed:
        if unit == "usd":
            assert committed_usd <= budget.limit_usd
        else:
            assert committed_tokens <= budget.limit_tokens
    await usage_flush()
    (row,) = await usage_rows(budget)
    assert (row.reserved_usd, row.reserved_tokens) == (0, 0)  # nothing left in flight
    records = [r for r in await request_records() if r.status == 200]
    assert len(records) == ok
    assert row.spent_tokens == sum(r.input_tokens + r.output_tokens for r in records)
    if unit == "usd":
        assert row.spent_usd == sum(r.cost_usd for r in records if r.cost_usd is not None)
        assert row.spent_usd <= budget.limit_usd
    else:
        assert row.spent_tokens <= budget.limit_tokens


async def _leave_before_the_first_token(key: str, body: dict[str, Any], upstream: MockAnthropicUpstream) -> None:
    """Send, wait until the upstream has the request (and is slow to answer), then go away (ASGI cancels the task)."""
    task = asyncio.create_task(post(key, body))
    for _ in range(500):
        if upstream.messages_requests:
            break
        await asyncio.sleep(0.01)
    assert upstream.messages_requests
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@api_db
@pytest.mark.parametrize("upstream_state", ["no-content-yet", "no-status-yet"])
async def test_a_client_that_leaves_before_the_first_token_releases_its_reservation(
    upstream_state: str, key: str, user: User, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    budget = await make_budget(name="b", user=user, limit_tokens=1_000_000)
    if upstream_state == "no-content-yet":  # message_start, then nothing: the gateway is still reading ahead
        events = stream_events("u", [{"type": "text", "text": "x"}], "end_turn", 5)
        upstream.enqueue(ScriptedResponse(events=events, hang_after=1))
    else:  # not even a status line
        upstream.enqueue(ScriptedResponse(hang_after=0))
    await _leave_before_the_first_token(key, {**HELLO, "stream": True}, upstream)
    assert await asyncio.to_thread(upstream.wait_for_disconnect, 5)
    await asyncio.sleep(0.05)
    (row,) = await usage_rows(budget)
    assert (row.reserved_tokens, row.reserved_usd) == (0, 0)


@api_db
async def test_usd_budget_holds_when_only_the_upstream_model_is_priced(
    key: str, user: User, provider: Provider, upstream: MockAnthropicUpstream, concurrent_db: None
) -> None:
    """The reservation is priced by the planned target, not the client's model (which may have no price)."""
    await sync_to_async(PriceEntry.objects.create)(
        model_pattern="upstream-model", input_per_mtok=Decimal(1000), output_per_mtok=Decimal(1000)
    )
    one_request = Decimal(estimate(HELLO) + 64) * 1000 / 1_000_000
    budget = await make_budget(name="usd", user=user, limit_usd=one_request)
    for _ in range(5):
        events = stream_events("u", [{"type": "text", "text": "ok"}], "end_turn", 10)
        upstream.enqueue(ScriptedResponse(events=events, chunk_delay=0.05))
    await routing_snapshot_get()
    responses = await asyncio.gather(*(post(key, HELLO) for _ in range(5)))
    await usage_flush()
    (row,) = await usage_rows(budget)
    assert [r.status_code for r in responses].count(200) == 1
    assert row.spent_usd <= budget.limit_usd


@api_db
async def test_a_request_refused_by_a_budget_does_not_use_up_the_rate_limit(
    key: str, user: User, provider: Provider
) -> None:
    """Refused by a budget: the rate-limit buckets taken at admission are given back."""
    await sync_to_async(RateLimit.objects.create)(
        api_key=await sync_to_async(ApiKey.objects.get)(user=user), requests_per_minute=2
    )
    budget = await make_budget(name="empty", user=user, limit_tokens=1)
    for _ in range(2):
        refused = await post(key, HELLO)
        assert refused.status_code == 429 and "empty" in error_of(refused)["message"]
    await sync_to_async(Budget.objects.filter(pk=budget.pk).update)(enabled=False)
    budgets_module.budget_cache_clear()
    assert (await post(key, HELLO)).status_code == 200


@api_db
async def test_an_unexpected_error_releases_the_reservation(
    key: str, user: User, provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway import pipeline

    async def boom(*_: Any, **__: Any) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(pipeline, "messages_open", boom)
    budget = await make_budget(name="b", user=user, limit_tokens=1_000_000)
    assert (await post(key, HELLO)).status_code == 500
    (row,) = await usage_rows(budget)
    assert row.reserved_tokens == 0
