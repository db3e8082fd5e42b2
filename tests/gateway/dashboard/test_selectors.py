"""Dashboard aggregations over hand-made usage records, with exact numbers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User

from gateway.breakers import breaker_store
from gateway.dashboard import selectors
from gateway.dashboard.window import window_parse
from gateway.models import Session, UsageDaily
from providers.models import Provider
from tests.gateway.dashboard.conftest import NOW, make_key, make_record

pytestmark = pytest.mark.django_db

DAY_WINDOW = window_parse(params={"range": "24h"}, now=NOW)[0]
MONTH_WINDOW = window_parse(params={"range": "30d"}, now=NOW)[0]


def at(hour: int, minute: int = 0, days_ago: int = 0) -> datetime:
    return datetime(2026, 3, 18, hour, minute, tzinfo=UTC) - timedelta(days=days_ago)


def test_timeseries_counts_requests_per_hour(alice: User, bob: User) -> None:
    make_record(user=alice, when=at(14, 5), cost="0.25", input_tokens=100, output_tokens=20)
    make_record(user=alice, when=at(14, 50), cost=None, status=429, input_tokens=7, output_tokens=0, provider="")
    make_record(user=bob, when=at(15, 1), cost="0", cache_hit=True, provider="cache")
    make_record(user=alice, when=at(14, 6), kind="attempt")  # upstream attempts are not requests
    make_record(user=alice, when=at(15, 0, days_ago=2))  # outside the last 24 hours
    buckets = selectors.usage_timeseries(window=DAY_WINDOW)
    assert len(buckets) == 24 and buckets[0].start == datetime(2026, 3, 17, 16, tzinfo=UTC)
    by_hour = {b.start.hour: b for b in buckets if b.requests}
    assert set(by_hour) == {14, 15}
    b14 = by_hour[14]
    assert (b14.requests, b14.errors, b14.cache_hits, b14.input_tokens, b14.output_tokens) == (2, 1, 0, 107, 20)
    assert (b14.cost_usd, b14.unpriced) == (Decimal("0.25"), 1)
    assert (by_hour[15].requests, by_hour[15].cache_hits) == (1, 1)
    only_bob = selectors.usage_timeseries(window=DAY_WINDOW, user_id=bob.pk)
    assert sum(b.requests for b in only_bob) == 1


def test_timeseries_per_day(alice: User) -> None:
    make_record(user=alice, when=at(1, days_ago=3), cost="1")
    make_record(user=alice, when=at(23, days_ago=3), cost="2")
    buckets = selectors.usage_timeseries(window=MONTH_WINDOW)
    assert len(buckets) == 30
    [busy] = [b for b in buckets if b.requests]
    assert (busy.start, busy.requests, busy.cost_usd) == (datetime(2026, 3, 15, tzinfo=UTC), 2, Decimal(3))


def test_latency_percentiles_of_answered_requests(alice: User) -> None:
    for ms in (100, 200, 300, 400, 1000):
        make_record(user=alice, when=at(14), latency_ms=ms)
    make_record(user=alice, when=at(14), latency_ms=1, provider="", status=429)  # refused: not a latency
    make_record(user=alice, when=at(12), latency_ms=50)
    latency = selectors.latency_percentiles(window=DAY_WINDOW)
    assert (latency.requests, latency.samples, latency.overall_p50, latency.overall_p95) == (6, 6, 200, 1000)
    hours = [b.hour for b in DAY_WINDOW.buckets()]
    assert latency.p50[hours.index(14)] == 300 and latency.p95[hours.index(14)] == 1000
    assert latency.p50[hours.index(12)] == 50 and latency.p50[hours.index(13)] is None


def test_latency_is_sampled_above_the_cap(alice: User, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selectors, "MAX_LATENCY_SAMPLES", 20)
    ids = []
    for n in range(42):  # each request followed by its upstream attempt, as a flush writes them
        ids.append(make_record(user=alice, when=at(14, n), latency_ms=100 + n).pk)
        make_record(user=alice, when=at(14, n), kind="attempt")
    latency = selectors.latency_percentiles(window=DAY_WINDOW)
    assert latency.requests == 42
    assert latency.samples == sum(1 for pk in ids if pk % 7 == 0) == 6  # not none, though every id has one parity
    assert [selectors.sampling_modulus(n) for n in (21, 200, 230, 1_000_000)] == [7, 11, 13, 50_021]


def test_daily_rows_use_the_rollup_only_for_final_days(alice: User) -> None:
    key = make_key(alice, "lk_alice1")
    # Five days ago: the rollup says 7 requests / $7; the records (say, partly purged) would say 1 / $1.
    UsageDaily.objects.create(day=date(2026, 3, 13), user=alice, api_key=key, provider="anthropic",
                              client_model="claude-sonnet-4-5", requests=7, errors=1, input_tokens=700,
                              output_tokens=70, cost_usd=Decimal(7), unpriced_requests=2)  # fmt: skip
    make_record(user=alice, key=key, when=at(10, days_ago=5), cost="1")
    # Four days ago: no rollup row (beat was not running): the records answer.
    make_record(user=alice, key=key, when=at(10, days_ago=4), cost="0.5", model="gpt-4o")
    # Yesterday: the rollup is not final yet (rebuilt every ten minutes), so the records answer.
    UsageDaily.objects.create(day=date(2026, 3, 17), user=alice, requests=99, cost_usd=Decimal(99))
    make_record(user=alice, key=key, when=at(10, days_ago=1), cost="0.25")
    make_record(user=alice, key=key, when=at(11), cost=None)
    rows = selectors.usage_daily_rows(window=MONTH_WINDOW, now=NOW)
    got = sorted(
        (r.day.isoformat(), r.model, r.requests, r.errors, r.input_tokens, r.cost_usd, r.unpriced) for r in rows
    )
    assert got == [
        ("2026-03-13", "claude-sonnet-4-5", 7, 1, 700, Decimal(7), 2),
        ("2026-03-14", "gpt-4o", 1, 0, 100, Decimal("0.5"), 0),
        ("2026-03-17", "claude-sonnet-4-5", 1, 0, 100, Decimal("0.25"), 0),
        ("2026-03-18", "claude-sonnet-4-5", 1, 0, 100, Decimal(0), 1),
    ]
    assert {(r.user, r.key, r.provider) for r in rows} == {("alice", "lk_alice1", "anthropic")}


def test_daily_rows_of_one_user(alice: User, bob: User) -> None:
    UsageDaily.objects.create(day=date(2026, 3, 10), user=bob, requests=3, cost_usd=Decimal(3))
    UsageDaily.objects.create(day=date(2026, 3, 10), user=alice, requests=1, cost_usd=Decimal(1))
    make_record(user=bob, when=at(9), cost="2")
    make_record(user=None, when=at(9), cost="5")  # a deleted user's request
    mine = selectors.usage_daily_rows(window=MONTH_WINDOW, user_id=alice.pk, now=NOW)
    assert [(r.user, r.requests, r.cost_usd) for r in mine] == [("alice", 1, Decimal(1))]
    everyone = selectors.usage_daily_rows(window=MONTH_WINDOW, now=NOW)
    assert sorted((r.user, r.cost_usd) for r in everyone) == [
        ("(deleted user)", Decimal(5)), ("alice", Decimal(1)), ("bob", Decimal(2)), ("bob", Decimal(3))]  # fmt: skip


def test_top_sessions_by_cost_in_the_window(alice: User, bob: User) -> None:
    cheap = Session.objects.create(external_id="sess-cheap", user=alice, cost_usd=Decimal(500))  # lifetime: ignored
    dear = Session.objects.create(external_id="sess-dear", user=bob)
    unpriced = Session.objects.create(external_id="sess-unpriced", user=alice)
    make_record(user=alice, session=cheap, when=at(10), cost="0.1", input_tokens=10, output_tokens=5)
    make_record(user=alice, session=cheap, when=at(10, 5), cost=None, input_tokens=10, output_tokens=5)
    make_record(user=bob, session=dear, when=at(11), cost="2.5")
    make_record(user=alice, session=unpriced, when=at(11), cost=None)
    make_record(user=alice, session=unpriced, when=at(11, days_ago=3), cost="100")  # outside the window
    top = selectors.sessions_top_by_cost(window=DAY_WINDOW)
    assert [(s.external_id, s.username, s.requests, s.tokens, s.cost_usd, s.unpriced) for s in top] == [
        ("sess-dear", "bob", 1, 110, Decimal("2.5"), 0),
        ("sess-cheap", "alice", 2, 30, Decimal("0.1"), 1),
        ("sess-unpriced", "alice", 1, 110, Decimal(0), 1),
    ]
    assert [s.external_id for s in selectors.sessions_top_by_cost(window=DAY_WINDOW, user_id=alice.pk, limit=1)] == [
        "sess-cheap"]  # fmt: skip


def test_routing_decisions_by_rule(alice: User) -> None:
    for _ in range(3):
        make_record(user=alice, when=at(10), rule="haiku-to-local", provider="ollama")
    make_record(user=alice, when=at(10), rule="default", provider="anthropic")
    make_record(user=alice, when=at(10), rule="", provider="cache", cache_hit=True)
    make_record(user=alice, when=at(10), rule="", provider="", status=429)
    rules = selectors.routing_decisions_by_rule(window=DAY_WINDOW)
    assert [(r.rule, r.provider, r.requests) for r in rules] == [
        ("haiku-to-local", "ollama", 3), ("(not routed)", "", 1), ("(response cache)", "cache", 1),
        ("default", "anthropic", 1)]  # fmt: skip


def test_recent_requests(alice: User, bob: User) -> None:
    key = make_key(alice, "lk_recent")
    make_record(user=alice, key=key, when=at(10), cost="0.00012345", request_id="req_old")
    make_record(user=bob, when=at(11), cost=None, request_id="req_bob")
    make_record(user=alice, key=key, when=at(12), cost="0", request_id="req_new", cache_hit=True)
    recent = selectors.requests_recent(window=DAY_WINDOW)
    assert [r.request_id for r in recent] == ["req_new", "req_bob", "req_old"]
    old = recent[2]
    assert (old.username, old.key_prefix, old.cost_text, old.cost_full) == (
        "alice",
        "lk_recent",
        "$0.000123",
        "0.00012345",
    )
    assert (recent[1].cost_text, recent[1].cost_full, recent[1].key_prefix) == ("—", "", None)
    assert (recent[0].cost_text, recent[0].cost_full) == ("$0.000000", "0")
    assert [r.request_id for r in selectors.requests_recent(window=DAY_WINDOW, user_id=bob.pk)] == ["req_bob"]
    assert len(selectors.requests_recent(window=DAY_WINDOW, limit=2)) == 2


def test_breaker_states(settings: object) -> None:
    first = Provider.objects.create(name="first", base_url="https://a.example", priority=1)
    second = Provider.objects.create(name="second", base_url="https://b.example", priority=2, enabled=False)
    store = breaker_store()
    for _ in range(5):  # LYNKR_BREAKER_FAILURES defaults to 5
        async_to_sync(store.apply)(second.pk, "failure")
    async_to_sync(store.apply)(first.pk, "failure")
    async_to_sync(store.apply)(999, "failure")  # a provider deleted since
    rows, error = selectors.breaker_states_list()
    assert error == ""
    assert [(r.provider, r.state, r.value, r.failures, r.enabled) for r in rows] == [
        ("first", "closed", 0, 1, True),
        ("second", "open", 2, 5, False),
        ("provider-999", "closed", 0, 1, False),
    ]


def test_breaker_store_failure_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    Provider.objects.create(name="only", base_url="https://a.example")

    class Broken:
        async def all(self) -> dict[int, object]:
            raise ConnectionError("redis is down")

    monkeypatch.setattr(selectors, "breaker_store", lambda: Broken())
    rows, error = selectors.breaker_states_list()
    assert error == "ConnectionError: redis is down"
    assert [(r.provider, r.state) for r in rows] == [("only", "closed")]
