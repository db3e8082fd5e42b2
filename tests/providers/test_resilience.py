"""Retry backoff (full jitter) and the circuit breaker: the pure rules, the in-process store, and the Redis store
(the same transitions from a Lua script, shared by every process)."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from providers.resilience import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    BreakerConfig,
    BreakerState,
    LocalBreakers,
    RedisBreakers,
    RetryPolicy,
    breaker_next,
    retry_delay,
)
from tests.services import require_redis

CONFIG = BreakerConfig()  # the defaults the issue asks for: 5 failures, 2 successes, 60 s open
REDIS_DB = 12  # these tests' keys carry a unique prefix too, so sharing the db with others is harmless


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- retry_delay ---------------------------------------------------------------------------------------------


def test_retry_policy_defaults_match_the_issue() -> None:
    assert RetryPolicy() == RetryPolicy(max_retries=3, initial_delay=1.0, max_delay=30.0)


@pytest.mark.parametrize("retry", range(3))
def test_full_jitter_lower_bound_is_zero(retry: int) -> None:
    assert retry_delay(RetryPolicy(), retry, rand=lambda: 0.0) == 0.0


@pytest.mark.parametrize(("retry", "ceiling"), [(0, 1.0), (1, 2.0), (2, 4.0)])
def test_full_jitter_upper_bound_is_the_exponential_ceiling(retry: int, ceiling: float) -> None:
    delay = retry_delay(RetryPolicy(), retry, rand=lambda: 0.999)
    assert delay == pytest.approx(0.999 * ceiling)
    assert delay is not None and delay < ceiling


def test_ceiling_is_capped_at_max_delay() -> None:
    policy = RetryPolicy(max_retries=12, initial_delay=1.0, max_delay=30.0)
    ceilings = [retry_delay(policy, n, rand=lambda: 1.0) for n in range(12)]
    assert ceilings == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0, 30.0, 30.0, 30.0]


def test_many_samples_stay_within_bounds_and_spread_over_them() -> None:
    policy = RetryPolicy(max_retries=8, initial_delay=0.5, max_delay=10.0)
    rng = random.Random(1234)
    for retry in range(policy.max_retries):
        ceiling = min(policy.max_delay, policy.initial_delay * 2**retry)
        samples = [retry_delay(policy, retry, rand=rng.random) for _ in range(2000)]
        assert all(s is not None and 0.0 <= s < ceiling for s in samples)
        values = [s for s in samples if s is not None]
        # Full jitter: uniform over [0, ceiling), not clustered at the ceiling ("equal jitter") or at zero.
        assert min(values) < 0.05 * ceiling and max(values) > 0.95 * ceiling
        assert sum(values) / len(values) == pytest.approx(ceiling / 2, rel=0.1)


def test_default_rand_is_random_and_bounded() -> None:
    delays = {retry_delay(RetryPolicy(), 2) for _ in range(50)}
    assert all(d is not None and 0.0 <= d < 4.0 for d in delays)
    assert len(delays) > 1  # jittered, not a fixed schedule


@pytest.mark.parametrize("retry_after", [0.0, 1.0, 7.0, 30.0])
def test_retry_after_within_max_delay_is_honoured_exactly(retry_after: float) -> None:
    # The server's word wins over the jittered schedule (no rand involved).
    assert retry_delay(RetryPolicy(), 0, retry_after=retry_after, rand=lambda: 0.0) == retry_after
    assert retry_delay(RetryPolicy(), 2, retry_after=retry_after, rand=lambda: 0.999) == retry_after


@pytest.mark.parametrize("retry_after", [30.5, 31.0, 3600.0])
def test_retry_after_longer_than_max_delay_is_not_waited_for(retry_after: float) -> None:
    assert retry_delay(RetryPolicy(), 0, retry_after=retry_after) is None


@pytest.mark.parametrize("max_retries", [0, 1, 3, 5])
def test_max_retries_bounds_the_number_of_delays(max_retries: int) -> None:
    policy = RetryPolicy(max_retries=max_retries)
    delays = [retry_delay(policy, n, rand=lambda: 0.5) for n in range(max_retries + 3)]
    assert all(d is not None for d in delays[:max_retries])
    assert delays[max_retries:] == [None, None, None]
    # No retry left: a retry-after does not buy one either.
    assert retry_delay(policy, max_retries, retry_after=1.0) is None


def test_zero_initial_delay_retries_at_once() -> None:
    policy = RetryPolicy(initial_delay=0.0)
    assert [retry_delay(policy, n, rand=lambda: 0.999) for n in range(3)] == [0.0, 0.0, 0.0]


# --- breaker_next: every transition -----------------------------------------------------------------------------


def test_closed_check_changes_nothing() -> None:
    state = BreakerState(CLOSED, 3, 0, 0.0)
    assert breaker_next(state, "check", 5000.0, CONFIG) == state


def test_closed_failures_count_up_to_the_threshold() -> None:
    state = BreakerState()
    for expected in range(1, CONFIG.failure_threshold):
        state = breaker_next(state, "failure", 10.0 + expected, CONFIG)
        assert state == BreakerState(CLOSED, expected, 0, 0.0)


def test_closed_opens_at_the_failure_threshold_stamped_now() -> None:
    state = BreakerState(CLOSED, CONFIG.failure_threshold - 1, 0, 0.0)
    assert breaker_next(state, "failure", 123.5, CONFIG) == BreakerState(OPEN, CONFIG.failure_threshold, 0, 123.5)


def test_closed_success_resets_the_consecutive_failure_count() -> None:
    state = BreakerState(CLOSED, CONFIG.failure_threshold - 1, 0, 0.0)
    assert breaker_next(state, "success", 1.0, CONFIG) == BreakerState()


def test_open_refuses_until_open_seconds_have_passed() -> None:
    opened = BreakerState(OPEN, 5, 0, 100.0)
    for event in ("check", "failure", "success"):
        assert breaker_next(opened, event, 100.0 + CONFIG.open_seconds - 0.001, CONFIG) == opened


def test_open_half_opens_after_open_seconds_on_check() -> None:
    opened = BreakerState(OPEN, 5, 0, 100.0)
    assert breaker_next(opened, "check", 100.0 + CONFIG.open_seconds, CONFIG) == BreakerState(HALF_OPEN, 0, 0, 100.0)


def test_open_expired_then_success_counts_as_first_half_open_success() -> None:
    opened = BreakerState(OPEN, 5, 0, 100.0)
    assert breaker_next(opened, "success", 500.0, CONFIG) == BreakerState(HALF_OPEN, 0, 1, 100.0)


def test_open_expired_then_failure_reopens_stamped_now() -> None:
    opened = BreakerState(OPEN, 5, 0, 100.0)
    assert breaker_next(opened, "failure", 500.0, CONFIG) == BreakerState(OPEN, CONFIG.failure_threshold, 0, 500.0)


def test_half_open_check_changes_nothing() -> None:
    state = BreakerState(HALF_OPEN, 0, 1, 100.0)
    assert breaker_next(state, "check", 10_000.0, CONFIG) == state


def test_half_open_closes_after_success_threshold() -> None:
    state = BreakerState(HALF_OPEN, 0, 0, 100.0)
    state = breaker_next(state, "success", 200.0, CONFIG)
    assert state == BreakerState(HALF_OPEN, 0, 1, 100.0)
    assert breaker_next(state, "success", 201.0, CONFIG) == BreakerState()


def test_half_open_failure_reopens_at_once() -> None:
    state = BreakerState(HALF_OPEN, 0, 1, 100.0)
    assert breaker_next(state, "failure", 250.0, CONFIG) == BreakerState(OPEN, CONFIG.failure_threshold, 0, 250.0)


def test_thresholds_come_from_the_config() -> None:
    config = BreakerConfig(failure_threshold=1, success_threshold=1, open_seconds=0.0)
    state = breaker_next(BreakerState(), "failure", 1.0, config)
    assert state.state == OPEN
    # open_seconds=0: the very next check half-opens, one success closes.
    assert breaker_next(state, "check", 1.0, config).state == HALF_OPEN
    assert breaker_next(state, "success", 1.0, config) == BreakerState()


def test_unknown_event_is_a_check() -> None:
    state = BreakerState(CLOSED, 2, 0, 0.0)
    assert breaker_next(state, "bogus", 1.0, CONFIG) == state


# --- LocalBreakers with a fake clock ----------------------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def test_local_breaker_full_cycle(clock: FakeClock) -> None:
    store = LocalBreakers(CONFIG, clock=clock)
    for n in range(1, 5):
        assert (await store.apply(7, "failure")) == BreakerState(CLOSED, n, 0, 0.0)
    opened = await store.apply(7, "failure")
    assert opened == BreakerState(OPEN, 5, 0, clock.now)
    clock.advance(CONFIG.open_seconds - 1)
    assert (await store.apply(7, "check")).state == OPEN
    clock.advance(1)
    assert (await store.apply(7, "check")).state == HALF_OPEN
    assert (await store.apply(7, "success")) == BreakerState(HALF_OPEN, 0, 1, opened.opened_at)
    assert (await store.apply(7, "success")) == BreakerState()
    assert (await store.apply(7, "check")).state == CLOSED


async def test_local_breaker_half_open_failure_reopens_for_a_full_period(clock: FakeClock) -> None:
    store = LocalBreakers(CONFIG, clock=clock)
    for _ in range(5):
        await store.apply(1, "failure")
    clock.advance(CONFIG.open_seconds)
    assert (await store.apply(1, "check")).state == HALF_OPEN
    assert (await store.apply(1, "success")).state == HALF_OPEN
    clock.advance(3)
    assert (await store.apply(1, "failure")) == BreakerState(OPEN, 5, 0, clock.now)
    clock.advance(CONFIG.open_seconds - 0.5)
    assert (await store.apply(1, "check")).state == OPEN  # the period restarted at the half-open failure
    clock.advance(0.5)
    assert (await store.apply(1, "check")).state == HALF_OPEN


async def test_local_breakers_are_per_provider_and_resettable(clock: FakeClock) -> None:
    store = LocalBreakers(CONFIG, clock=clock)
    for _ in range(5):
        await store.apply(1, "failure")
    await store.apply(2, "failure")
    assert {pid: s.state for pid, s in (await store.all()).items()} == {1: OPEN, 2: CLOSED}
    assert (await store.all())[2].failures == 1
    await store.reset(1)
    assert (await store.apply(1, "check")) == BreakerState()
    clock.advance(CONFIG.open_seconds)
    assert (await store.all())[1].state == CLOSED


async def test_local_breaker_all_reports_half_open_after_the_period(clock: FakeClock) -> None:
    store = LocalBreakers(CONFIG, clock=clock)
    for _ in range(5):
        await store.apply(3, "failure")
    clock.advance(CONFIG.open_seconds + 1)
    assert (await store.all())[3].state == HALF_OPEN


# --- RedisBreakers: the Lua script gives the same transitions, shared between processes -------------------------

# Steps: (seconds to advance the clock, event). Each sequence is replayed on LocalBreakers and RedisBreakers.
SEQUENCES: dict[str, list[tuple[float, str]]] = {
    "opens-after-5": [(1.0, "failure")] * 5 + [(1.0, "check")],
    "success-resets-count": [(1.0, "failure")] * 4 + [(1.0, "success")] + [(1.0, "failure")] * 4 + [(0.0, "check")],
    "open-ignores-events": [(0.0, "failure")] * 5 + [(10.0, "success"), (10.0, "failure"), (10.0, "check")],
    "half-opens-then-closes": [(0.0, "failure")] * 5 + [(60.0, "check"), (0.5, "success"), (0.5, "success")],
    "half-open-failure-reopens": [(0.0, "failure")] * 5
    + [(61.0, "check"), (1.0, "success"), (1.0, "failure")]
    + [(59.5, "check"), (0.5, "check")],
    "expired-open-direct-success": [(0.0, "failure")] * 5 + [(75.0, "success"), (0.0, "success"), (0.0, "failure")],
    "expired-open-direct-failure": [(0.0, "failure")] * 5 + [(60.25, "failure"), (59.75, "check"), (0.25, "check")],
    "closed-success-noop": [(1.0, "success"), (1.0, "check"), (1.0, "success")],
}


@pytest.fixture
def redis_url() -> str:
    return f"{require_redis()}/{REDIS_DB}"


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix no other test (or process) uses; its keys are deleted afterwards."""
    import redis

    value = f"lynkr-test:breaker:{uuid.uuid4().hex}:"
    yield value
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{value}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def _redis_store(url: str, prefix: str, clock: FakeClock, config: BreakerConfig = CONFIG) -> RedisBreakers:
    class TestRedisBreakers(RedisBreakers):
        PREFIX = prefix

    return TestRedisBreakers(url, config, clock=clock)


@pytest.fixture
async def redis_stores(redis_url: str, prefix: str) -> AsyncIterator[list[RedisBreakers]]:
    """Every RedisBreakers a test makes (so their connections are closed on the test's loop)."""
    made: list[RedisBreakers] = []
    yield made
    for store in made:
        for client, *_ in list(store._redis.by_loop.values()):
            await client.aclose()


@pytest.mark.parametrize("steps", list(SEQUENCES.values()), ids=list(SEQUENCES))
async def test_redis_transitions_equal_local_ones(
    steps: list[tuple[float, str]], redis_url: str, prefix: str, redis_stores: list[RedisBreakers]
) -> None:
    clock = FakeClock(1_700_000_000.0)
    local = LocalBreakers(CONFIG, clock=clock)
    shared = _redis_store(redis_url, prefix, clock)
    redis_stores.append(shared)
    for number, (advance, event) in enumerate(steps):
        clock.advance(advance)
        expected = await local.apply(42, event)
        got = await shared.apply(42, event)
        assert got == expected, f"step {number}: {event} after +{advance}s"


async def test_two_processes_see_one_breaker(redis_url: str, prefix: str, redis_stores: list[RedisBreakers]) -> None:
    clock = FakeClock(1_700_000_000.0)
    process_a = _redis_store(redis_url, prefix, clock)
    process_b = _redis_store(redis_url, prefix, clock)
    redis_stores.extend([process_a, process_b])
    # Failures from both processes add up to the one threshold.
    for store in (process_a, process_b, process_a, process_b):
        assert (await store.apply(9, "failure")).state == CLOSED
    assert (await process_b.apply(9, "check")).failures == 4
    assert (await process_a.apply(9, "failure")).state == OPEN
    assert (await process_b.apply(9, "check")).state == OPEN  # b never saw a failure itself
    assert (await process_b.apply(10, "check")).state == CLOSED  # per provider
    clock.advance(CONFIG.open_seconds)
    assert (await process_b.apply(9, "check")).state == HALF_OPEN
    assert (await process_a.apply(9, "success")).state == HALF_OPEN
    assert (await process_b.apply(9, "success")) == BreakerState()
    assert (await process_a.apply(9, "check")) == BreakerState()


async def test_redis_all_and_reset(redis_url: str, prefix: str, redis_stores: list[RedisBreakers]) -> None:
    clock = FakeClock(1_700_000_000.0)
    process_a = _redis_store(redis_url, prefix, clock)
    process_b = _redis_store(redis_url, prefix, clock)
    redis_stores.extend([process_a, process_b])
    for _ in range(5):
        await process_a.apply(3, "failure")
    await process_a.apply(4, "failure")
    states = await process_b.all()
    assert {pid: s.state for pid, s in states.items()} == {3: OPEN, 4: CLOSED}
    assert states[3].opened_at == clock.now and states[4].failures == 1
    await process_b.reset(3)
    assert (await process_a.apply(3, "check")) == BreakerState()


async def test_redis_keeps_opened_at_to_the_millisecond(
    redis_url: str, prefix: str, redis_stores: list[RedisBreakers]
) -> None:
    # A real wall clock (~1.7e9 s) through Lua's number formatting: the open period must not drift.
    clock = FakeClock(1_712_345_678.123456)
    shared = _redis_store(redis_url, prefix, clock, BreakerConfig(failure_threshold=1))
    redis_stores.append(shared)
    opened = await shared.apply(5, "failure")
    assert opened.state == OPEN and opened.opened_at == pytest.approx(clock.now, abs=1e-3)
    clock.advance(CONFIG.open_seconds - 0.01)
    assert (await shared.apply(5, "check")).state == OPEN
    clock.advance(0.02)
    assert (await shared.apply(5, "check")).state == HALF_OPEN
