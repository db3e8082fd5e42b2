"""Rate limits as token buckets: the pure bucket rule, the in-process store, merging key and user decisions, and the
Redis store (the same rule from a Lua script: identical decisions, exact across processes)."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import override_settings

from gateway.ratelimit import (
    ZERO_LIMIT_WAIT,
    Decision,
    Limits,
    LocalRateLimiter,
    RedisRateLimiter,
    bucket_take,
    merge_decisions,
    rate_limiter,
)
from tests.services import require_redis

REDIS_DB = 12  # keys carry a unique prefix per test, so sharing the db with other tests is harmless
T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@dataclass
class FakeClock:
    now: float = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def h(decision: Decision, name: str, field: str) -> str:
    return decision.headers[f"anthropic-ratelimit-{name}-{field}"]


# --- bucket_take: the pure rule ---------------------------------------------------------------------------------


def test_a_full_bucket_gives_what_it_has() -> None:
    assert bucket_take(30.0, 30.0, 0.5, T0, T0, 1) == (30.0, 29.0, 0.0)
    assert bucket_take(30.0, 30.0, 0.5, T0, T0, 30) == (30.0, 0.0, 0.0)


def test_refill_is_continuous_and_capped() -> None:
    assert bucket_take(0.0, 30.0, 0.5, T0, T0 + 3, 1) == (1.5, 0.5, 0.0)
    assert bucket_take(0.0, 30.0, 0.5, T0, T0 + 3600, 1) == (30.0, 29.0, 0.0)


def test_a_refusal_takes_nothing_and_says_how_long_to_wait() -> None:
    assert bucket_take(0.5, 30.0, 0.5, T0, T0, 1) == (0.5, 0.5, 1.0)
    assert bucket_take(100.0, 600.0, 10.0, T0, T0, 400) == (100.0, 100.0, 30.0)


def test_an_amount_larger_than_the_bucket_passes_when_full_and_leaves_debt() -> None:
    assert bucket_take(600.0, 600.0, 10.0, T0, T0, 1000) == (600.0, -400.0, 0.0)
    assert bucket_take(500.0, 600.0, 10.0, T0, T0, 1000) == (500.0, 500.0, 10.0)  # needs a full bucket, not 1000


def test_amount_zero_only_checks_for_debt() -> None:
    assert bucket_take(0.0, 600.0, 10.0, T0, T0, 0) == (0.0, 0.0, 0.0)
    assert bucket_take(-300.0, 600.0, 10.0, T0, T0, 0) == (-300.0, -300.0, 30.0)
    assert bucket_take(-300.0, 600.0, 10.0, T0, T0 + 30, 0) == (0.0, 0.0, 0.0)


def test_force_charges_into_debt_and_gives_back_up_to_capacity() -> None:
    assert bucket_take(100.0, 600.0, 10.0, T0, T0, 900, force=True) == (100.0, -800.0, 0.0)
    assert bucket_take(500.0, 600.0, 10.0, T0, T0, -400, force=True) == (500.0, 600.0, 0.0)


def test_a_clock_behind_the_last_update_refills_nothing() -> None:
    assert bucket_take(10.0, 30.0, 0.5, T0, T0 - 5, 1) == (10.0, 9.0, 0.0)


def test_a_zero_limit_admits_nothing() -> None:
    assert bucket_take(0.0, 0.0, 0.0, T0, T0 + 100, 1) == (0.0, 0.0, ZERO_LIMIT_WAIT)
    assert bucket_take(0.0, 0.0, 0.0, T0, T0, 0) == (0.0, 0.0, ZERO_LIMIT_WAIT)
    assert bucket_take(0.0, 0.0, 0.0, T0, T0, 5, force=True) == (0.0, 0.0, 0.0)


# --- LocalRateLimiter with a fake clock -------------------------------------------------------------------------


async def test_requests_per_minute_exceeded_is_refused_with_retry_after(clock: FakeClock) -> None:
    limiter = LocalRateLimiter(clock=clock)
    limits = Limits(requests_per_minute=30)  # one request back every 2 s
    for n in range(30):
        decision = await limiter.admit("key:1", limits, input_tokens=0)
        assert decision.allowed and decision.retry_after == 0 and decision.exceeded == ""
        assert h(decision, "requests", "remaining") == str(29 - n)
    refused = await limiter.admit("key:1", limits, input_tokens=0)
    assert not refused.allowed
    assert (refused.retry_after, refused.exceeded) == (2, "requests")
    assert h(refused, "requests", "remaining") == "0"
    assert h(refused, "requests", "limit") == "30"


async def test_requests_refill_over_time(clock: FakeClock) -> None:
    limiter = LocalRateLimiter(clock=clock)
    limits = Limits(requests_per_minute=30)
    for _ in range(30):
        await limiter.admit("key:1", limits, input_tokens=0)
    clock.advance(1.9)
    assert (await limiter.admit("key:1", limits, input_tokens=0)).retry_after == 1  # 0.1 s short: rounds up to 1
    clock.advance(0.1)
    assert (await limiter.admit("key:1", limits, input_tokens=0)).allowed
    assert not (await limiter.admit("key:1", limits, input_tokens=0)).allowed
    clock.advance(60)
    decision = await limiter.admit("key:1", limits, input_tokens=0)
    assert decision.allowed and h(decision, "requests", "remaining") == "29"  # refilled to the cap, not beyond


async def test_input_token_limit(clock: FakeClock) -> None:
    limiter = LocalRateLimiter(clock=clock)
    limits = Limits(input_tokens_per_minute=600)  # 10 tokens/s
    first = await limiter.admit("key:1", limits, input_tokens=500)
    assert first.allowed and h(first, "input-tokens", "remaining") == "100"
    refused = await limiter.admit("key:1", limits, input_tokens=400)
    assert (refused.allowed, refused.retry_after, refused.exceeded) == (False, 30, "input_tokens")
    assert h(refused, "input-tokens", "remaining") == "100"  # nothing taken
    clock.advance(30)
    assert (await limiter.admit("key:1", limits, input_tokens=400)).allowed


async def test_a_refusal_by_one_bucket_takes_nothing_from_the_others(clock: FakeClock) -> None:
    limiter = LocalRateLimiter(clock=clock)
    limits = Limits(requests_per_minute=60, input_tokens_per_minute=600)
    await limiter.admit("key:1", limits, input_tokens=500)
    refused = await limiter.admit("key:1", limits, input_tokens=200)
    assert refused.exceeded == "input_tokens"
    decision = await limiter.admit("key:1", limits, input_tokens=100)
    assert decision.allowed and h(decision, "requests", "remaining") == "58"


async def test_the_longest_wait_wins(clock: FakeClock) -> None:
    limiter = LocalRateLimiter(clock=clock)
    limits = Limits(requests_per_minute=1, input_tokens_per_minute=600)
    await limiter.admit("key:1", limits, input_tokens=600)
    refused = await limiter.admit("key:1", limits, input_tokens=600)  # requests: 60 s; input: 60 s; tie -> first
    assert (refused.retry_after, refused.exceeded) == (60, "requests")
    clock.advance(59)
    refused = await limiter.admit("key:1", limits, input_tokens=600)
    assert (refused.retry_after, refused.exceeded) == (1, "requests")


async def test_an_oversized_input_passes_on_a_full_bucket_then_waits_off_the_debt(clock: FakeClock) -> None:
    limiter = LocalRateLimiter(clock=clock)
    limits = Limits(input_tokens_per_minute=600)
    assert (await limiter.admit("key:1", limits, input_tokens=1000)).allowed
    refused = await limiter.admit("key:1", limits, input_tokens=1)
    assert (refused.retry_after, refused.exceeded) == (41, "input_tokens")  # 400 of debt + 1 at 10/s = 40.1 s


async def test_output_debt_blocks_the_next_admit_until_it_refills(clock: FakeClock) -> None:
    limiter = LocalRateLimiter(clock=clock)
    limits = Limits(output_tokens_per_minute=600)
    assert (await limiter.admit("key:1", limits, input_tokens=10_000)).allowed  # no input limit set
    await limiter.settle("key:1", limits, output_tokens=900)
    refused = await limiter.admit("key:1", limits, input_tokens=0)
    assert (refused.allowed, refused.retry_after, refused.exceeded) == (False, 30, "output_tokens")
    assert h(refused, "output-tokens", "remaining") == "0"
    clock.advance(29.5)
    assert not (await limiter.admit("key:1", limits, input_tokens=0)).allowed
    clock.advance(0.5)
    decision = await limiter.admit("key:1", limits, input_tokens=0)
    assert decision.allowed and h(decision, "output-tokens", "remaining") == "0"


async def test_settle_corrects_the_input_estimate(clock: FakeClock) -> None:
    limiter = LocalRateLimiter(clock=clock)
    limits = Limits(input_tokens_per_minute=600)
    await limiter.admit("key:1", limits, input_tokens=500)
    await limiter.settle("key:1", limits, output_tokens=50, input_correction=-400)  # really 100; no output limit
    assert h(await limiter.admit("key:1", limits, input_tokens=0), "input-tokens", "remaining") == "500"
    await limiter.settle("key:1", limits, output_tokens=0, input_correction=700)  # underestimated: into debt
    refused = await limiter.admit("key:1", limits, input_tokens=0)
    assert (refused.retry_after, refused.exceeded) == (20, "input_tokens")
    await limiter.settle("key:1", limits, output_tokens=0, input_correction=-10_000)  # never above the limit
    assert h(await limiter.admit("key:1", limits, input_tokens=0), "input-tokens", "remaining") == "600"


async def test_release_gives_back_an_admit(clock: FakeClock) -> None:
    limiter = LocalRateLimiter(clock=clock)
    limits = Limits(requests_per_minute=60, input_tokens_per_minute=600)
    await limiter.admit("key:1", limits, input_tokens=500)
    await limiter.release("key:1", limits, input_tokens=500)
    decision = await limiter.admit("key:1", limits, input_tokens=0)
    assert (h(decision, "requests", "remaining"), h(decision, "input-tokens", "remaining")) == ("59", "600")


async def test_headers_values_and_format(clock: FakeClock) -> None:
    limiter = LocalRateLimiter(clock=clock)
    limits = Limits(requests_per_minute=60, input_tokens_per_minute=600, output_tokens_per_minute=1200)
    await limiter.admit("key:1", limits, input_tokens=100)
    await limiter.settle("key:1", limits, output_tokens=300)
    clock.advance(0.25)
    decision = await limiter.admit("key:1", limits, input_tokens=200)
    assert decision.headers == {
        "anthropic-ratelimit-requests-limit": "60",
        "anthropic-ratelimit-requests-remaining": "58",  # 59.25 - 1
        "anthropic-ratelimit-requests-reset": "2023-11-14T22:13:22Z",  # 1.75 s to full, rounded up
        "anthropic-ratelimit-input-tokens-limit": "600",
        "anthropic-ratelimit-input-tokens-remaining": "302",  # 500 + 2.5 - 200
        "anthropic-ratelimit-input-tokens-reset": "2023-11-14T22:13:50Z",  # 297.5 / 10 = 29.75 s
        "anthropic-ratelimit-output-tokens-limit": "1200",
        "anthropic-ratelimit-output-tokens-remaining": "905",  # 900 + 5
        "anthropic-ratelimit-output-tokens-reset": "2023-11-14T22:13:35Z",  # 295 / 20 = 14.75 s
        "anthropic-ratelimit-tokens-limit": "1800",
        "anthropic-ratelimit-tokens-remaining": "1207",
        "anthropic-ratelimit-tokens-reset": "2023-11-14T22:13:50Z",  # the later of the two
    }
    assert all(RFC3339.match(v) for k, v in decision.headers.items() if k.endswith("-reset"))


async def test_only_the_limits_that_are_set_get_headers(clock: FakeClock) -> None:
    limiter = LocalRateLimiter(clock=clock)
    requests_only = await limiter.admit("key:1", Limits(requests_per_minute=5), input_tokens=10)
    assert {k.rsplit("-", 1)[0] for k in requests_only.headers} == {"anthropic-ratelimit-requests"}
    input_only = await limiter.admit("key:2", Limits(input_tokens_per_minute=100), input_tokens=10)
    assert {k.rsplit("-", 1)[0] for k in input_only.headers} == {
        "anthropic-ratelimit-input-tokens",
        "anthropic-ratelimit-tokens",
    }
    assert h(input_only, "tokens", "limit") == "100" and h(input_only, "tokens", "remaining") == "90"


async def test_unlimited_is_allowed_without_headers_or_state(clock: FakeClock) -> None:
    limiter = LocalRateLimiter(clock=clock)
    assert Limits().unlimited and not Limits(output_tokens_per_minute=1).unlimited
    for _ in range(3):
        assert await limiter.admit("key:1", Limits(), input_tokens=10**9) == Decision(True, 0, {})
    await limiter.settle("key:1", Limits(), output_tokens=10**9)
    assert limiter._buckets == {}


async def test_subjects_are_independent(clock: FakeClock) -> None:
    limiter = LocalRateLimiter(clock=clock)
    limits = Limits(requests_per_minute=1)
    assert (await limiter.admit("key:1", limits, input_tokens=0)).allowed
    assert (await limiter.admit("user:1", limits, input_tokens=0)).allowed
    assert not (await limiter.admit("key:1", limits, input_tokens=0)).allowed


async def test_a_zero_limit_refuses_everything(clock: FakeClock) -> None:
    limiter = LocalRateLimiter(clock=clock)
    refused = await limiter.admit("key:1", Limits(requests_per_minute=0), input_tokens=0)
    assert (refused.allowed, refused.retry_after, refused.exceeded) == (False, 60, "requests")
    assert h(refused, "requests", "limit") == "0" and h(refused, "requests", "remaining") == "0"


# --- merge_decisions: key limits AND user limits ----------------------------------------------------------------


def _headers(name: str, limit: int, remaining: int, reset: str) -> dict[str, str]:
    p = f"anthropic-ratelimit-{name}-"
    return {p + "limit": str(limit), p + "remaining": str(remaining), p + "reset": reset}


def test_merge_takes_the_tightest_of_each_kind() -> None:
    key = Decision(True, 0, _headers("requests", 100, 40, "R1") | _headers("input-tokens", 1000, 10, "I1"))
    user = Decision(True, 0, _headers("requests", 50, 45, "R2") | _headers("input-tokens", 5000, 4000, "I2"))
    merged = merge_decisions([key, user])
    assert merged == Decision(True, 0, _headers("requests", 100, 40, "R1") | _headers("input-tokens", 1000, 10, "I1"))


def test_merge_ties_go_to_the_later_reset_and_missing_kinds_are_filled_in() -> None:
    key = Decision(True, 0, _headers("requests", 10, 0, "2023-11-14T22:13:21Z"))
    user = Decision(True, 0, _headers("requests", 20, 0, "2023-11-14T22:13:30Z") | _headers("tokens", 9, 9, "T"))
    merged = merge_decisions([key, user])
    assert merged.headers == _headers("requests", 20, 0, "2023-11-14T22:13:30Z") | _headers("tokens", 9, 9, "T")


def test_merge_refuses_if_any_refuses_with_the_longest_wait() -> None:
    ok = Decision(True, 0, {})
    short = Decision(False, 3, {}, "requests")
    long = Decision(False, 40, {}, "output_tokens")
    assert merge_decisions([ok, short]) == Decision(False, 3, {}, "requests")
    assert merge_decisions([short, ok, long]) == Decision(False, 40, {}, "output_tokens")
    assert merge_decisions([]) == Decision(True, 0, {})
    assert merge_decisions([long]) is long


# --- RedisRateLimiter: the same rule from Lua, atomic across processes -------------------------------------------


@pytest.fixture
def redis_url() -> str:
    return f"{require_redis()}/{REDIS_DB}"


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix no other test (or process) uses; its keys are deleted afterwards."""
    import redis

    value = f"lynkr-test:rl:{uuid.uuid4().hex}:"
    yield value
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{value}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
async def redis_limiters(redis_url: str, prefix: str) -> AsyncIterator[list[RedisRateLimiter]]:
    """Every RedisRateLimiter a test makes (their connections are closed on the test's loop)."""
    made: list[RedisRateLimiter] = []
    yield made
    for limiter in made:
        for client, *_ in list(limiter._redis.by_loop.values()):
            await client.aclose()


def _redis(url: str, prefix: str, clock: FakeClock, made: list[RedisRateLimiter]) -> RedisRateLimiter:
    limiter = RedisRateLimiter(url, prefix=prefix, clock=clock)
    made.append(limiter)
    return limiter


# Steps: (seconds to advance, operation, keyword arguments); each scenario is replayed on both stores. The odd
# limits make refill rates that are not exact in binary, so any drift between the Python and Lua arithmetic shows.
Step = tuple[float, str, dict[str, int]]


def admit(after: float = 0.0, tokens: int = 0) -> Step:
    return (after, "admit", {"input_tokens": tokens})


def settle(after: float = 0.0, output: int = 0, correction: int = 0) -> Step:
    return (after, "settle", {"output_tokens": output, "input_correction": correction})


def release(after: float = 0.0, tokens: int = 0) -> Step:
    return (after, "release", {"input_tokens": tokens})


SCENARIOS: dict[str, tuple[Limits, list[Step]]] = {
    "rpm": (Limits(requests_per_minute=7), [admit(0.3)] * 10 + [admit(8.57), admit(), admit(60), admit()]),
    "input-tokens": (
        Limits(input_tokens_per_minute=1000),
        [admit(0, 700), admit(1.1, 400), admit(17, 400), admit(0, 2500), admit(60, 2500), admit(0.01), admit(149.9)],
    ),
    "output-debt": (
        Limits(requests_per_minute=100, output_tokens_per_minute=333),
        [admit(), settle(0.5, output=1000), admit(10), admit(110.2), settle(output=1), admit(), admit(0.2)],
    ),
    "corrections-and-release": (
        Limits(requests_per_minute=3, input_tokens_per_minute=777, output_tokens_per_minute=555),
        [
            *(admit(0, 600), settle(0.2, output=40, correction=-550), admit(0.1, 700), release(0, 700)),
            *(admit(0.3, 100), admit(), admit(), settle(correction=900), admit(3.3, 1), admit(1e-3, 1), admit(70)),
        ],
    ),
    "zero-limit": (Limits(requests_per_minute=5, output_tokens_per_minute=0), [admit(), settle(output=9), admit(1)]),
    "clock-skew": (Limits(requests_per_minute=2), [admit(), admit(-5), admit(-1), admit(36), admit(), admit(1)]),
}


async def _run(limiter: Any, limits: Limits, op: str, kwargs: dict[str, int]) -> Decision | None:
    result: Decision | None = await getattr(limiter, op)("subject:1", limits, **kwargs)
    return result


@pytest.mark.parametrize("scenario", list(SCENARIOS.values()), ids=list(SCENARIOS))
async def test_redis_decisions_equal_local_ones(
    scenario: tuple[Limits, list[Step]], redis_url: str, prefix: str, redis_limiters: list[RedisRateLimiter]
) -> None:
    limits, steps = scenario
    clock = FakeClock(T0 + 0.123)
    local = LocalRateLimiter(clock=clock)
    shared = _redis(redis_url, prefix, clock, redis_limiters)
    outcomes = []
    for number, (advance, op, kwargs) in enumerate(steps):
        clock.advance(advance)
        expected = await _run(local, limits, op, kwargs)
        got = await _run(shared, limits, op, kwargs)
        assert got == expected, f"step {number}: {op}({kwargs}) after {advance:+}s"
        if expected is not None:
            outcomes.append(expected.allowed)
    assert False in outcomes  # every scenario reaches a refusal


async def test_redis_keys_are_prefixed_and_expire(
    redis_url: str, prefix: str, redis_limiters: list[RedisRateLimiter]
) -> None:
    import redis.asyncio as aioredis

    assert RedisRateLimiter.PREFIX == "lynkr:rl:"
    clock = FakeClock()
    limiter = _redis(redis_url, prefix, clock, redis_limiters)
    limits = Limits(requests_per_minute=60, output_tokens_per_minute=60)
    client = aioredis.Redis.from_url(redis_url)
    try:
        await limiter.admit("key:9", limits, input_tokens=0)
        assert 110 <= await client.ttl(f"{prefix}key:9") <= 120
        await limiter.settle("key:9", limits, output_tokens=600)  # 10 minutes of debt: kept that long
        assert 600 <= await client.ttl(f"{prefix}key:9") <= 602
        await limiter.release("key:9", limits, input_tokens=0)  # a shorter bucket never shortens the key's life
        assert 600 <= await client.ttl(f"{prefix}key:9") <= 602
        assert not (await limiter.admit("key:9", limits, input_tokens=0)).allowed
        assert 600 <= await client.ttl(f"{prefix}key:9") <= 602  # a refusal writes nothing
        await limiter.admit("key:other", Limits(), input_tokens=0)
        assert await client.exists(f"{prefix}key:other") == 0  # unlimited: Redis untouched
    finally:
        await client.aclose()


async def test_redis_is_exact_across_processes(
    redis_url: str, prefix: str, redis_limiters: list[RedisRateLimiter]
) -> None:
    clock = FakeClock()  # frozen: nothing refills, so exactly the bucket's 50 may pass
    processes = [_redis(redis_url, prefix, clock, redis_limiters) for _ in range(2)]
    limits = Limits(requests_per_minute=50, input_tokens_per_minute=10**6)

    async def worker(limiter: RedisRateLimiter) -> int:
        allowed = 0
        for _ in range(25):
            allowed += (await limiter.admit("key:hot", limits, input_tokens=7)).allowed
        return allowed

    results = await asyncio.gather(*(worker(p) for p in processes for _ in range(4)))
    assert sum(results) == 50
    last = await processes[0].admit("key:hot", limits, input_tokens=0)
    assert h(last, "requests", "remaining") == "0"
    assert h(last, "input-tokens", "remaining") == str(10**6 - 50 * 7)


# --- the per-process factory ------------------------------------------------------------------------------------


def test_rate_limiter_is_redis_when_configured_else_local() -> None:
    rate_limiter.cache_clear()
    try:
        with override_settings(REDIS_URL=None):
            assert isinstance(rate_limiter(), LocalRateLimiter)
            assert rate_limiter() is rate_limiter()
        rate_limiter.cache_clear()
        with override_settings(REDIS_URL="redis://127.0.0.1:6379/0"):
            limiter = rate_limiter()
            assert isinstance(limiter, RedisRateLimiter) and limiter.prefix == "lynkr:rl:"
    finally:
        rate_limiter.cache_clear()
