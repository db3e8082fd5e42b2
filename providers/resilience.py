"""Retries with backoff and full jitter, and a circuit breaker per provider.

Backoff: "full jitter" (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/): the n-th retry
waits uniform(0, min(max_delay, initial * 2**n)). An upstream ``retry-after`` is honoured when it is within
``max_delay``; longer than that, the request is not retried here (the client gets the 429 and its retry-after).

Breaker (per provider): CLOSED counts consecutive failures and opens at ``failure_threshold``; OPEN refuses until
``open_seconds`` have passed, then HALF_OPEN lets requests through; ``success_threshold`` successes close it, one
failure reopens it. HTTP failures count as well as exceptions. The transition rules are one pure function; the
state lives in process memory, or in Redis (a Lua script applies the same rules atomically) when REDIS_URL is set,
so a breaker opened by one process is open in every process.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from providers.redis_clients import LoopRedis

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 3
    initial_delay: float = 1.0
    max_delay: float = 30.0


def retry_delay(
    policy: RetryPolicy, retry: int, *, retry_after: float | None = None, rand: Callable[[], float] = random.random
) -> float | None:
    """Seconds to wait before retry number ``retry`` (0-based), or None when waiting is not worth it."""
    if retry >= policy.max_retries:
        return None
    if retry_after is not None:
        return retry_after if retry_after <= policy.max_delay else None
    ceiling = min(policy.max_delay, policy.initial_delay * (2**retry))
    return float(rand() * ceiling)


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    failure_threshold: int = 5
    success_threshold: int = 2
    open_seconds: float = 60.0


@dataclass(frozen=True, slots=True)
class BreakerState:
    state: str = CLOSED
    failures: int = 0
    successes: int = 0
    opened_at: float = 0.0


def breaker_next(current: BreakerState, event: str, now: float, config: BreakerConfig) -> BreakerState:
    """The state after ``event`` ("check", "success" or "failure") at time ``now`` (pure)."""
    state = current
    if state.state == OPEN and now - state.opened_at >= config.open_seconds:
        state = BreakerState(HALF_OPEN, 0, 0, state.opened_at)
    if event == "success":
        if state.state == HALF_OPEN:
            successes = state.successes + 1
            if successes >= config.success_threshold:
                return BreakerState()
            return replace(state, successes=successes)
        return BreakerState() if state.state == CLOSED else state
    if event == "failure":
        if state.state == HALF_OPEN:
            return BreakerState(OPEN, config.failure_threshold, 0, now)
        if state.state == CLOSED:
            failures = state.failures + 1
            if failures >= config.failure_threshold:
                return BreakerState(OPEN, failures, 0, now)
            return replace(state, failures=failures)
        return state
    return state


class BreakerStore(Protocol):
    async def apply(self, provider_id: int, event: str) -> BreakerState: ...

    async def reset(self, provider_id: int) -> None: ...

    async def all(self) -> dict[int, BreakerState]: ...


class LocalBreakers:
    """In-process breaker state (the embedded default: one server process)."""

    def __init__(self, config: BreakerConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self._states: dict[int, BreakerState] = {}

    async def apply(self, provider_id: int, event: str) -> BreakerState:
        state = breaker_next(self._states.get(provider_id, BreakerState()), event, self.clock(), self.config)
        self._states[provider_id] = state
        return state

    async def reset(self, provider_id: int) -> None:
        self._states.pop(provider_id, None)

    async def all(self) -> dict[int, BreakerState]:
        return {pid: await self.apply(pid, "check") for pid in list(self._states)}


# The same transitions as breaker_next, applied atomically in Redis. KEYS[1] = the provider's hash;
# ARGV = event, now, failure_threshold, success_threshold, open_seconds.
_LUA = """
local s = redis.call('HMGET', KEYS[1], 'state', 'failures', 'successes', 'opened_at')
local state = s[1] or 'closed'
local failures = tonumber(s[2] or '0')
local successes = tonumber(s[3] or '0')
local opened_at = tonumber(s[4] or '0')
local event, now = ARGV[1], tonumber(ARGV[2])
local fth, sth, open_s = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if state == 'open' and now - opened_at >= open_s then state = 'half_open'; failures = 0; successes = 0 end
if event == 'success' then
  if state == 'half_open' then
    successes = successes + 1
    if successes >= sth then state = 'closed'; failures = 0; successes = 0; opened_at = 0 end
  elseif state == 'closed' then failures = 0; successes = 0; opened_at = 0 end
elseif event == 'failure' then
  if state == 'half_open' then state = 'open'; failures = fth; successes = 0; opened_at = now
  elseif state == 'closed' then
    failures = failures + 1
    if failures >= fth then state = 'open'; successes = 0; opened_at = now end
  end
end
redis.call('HSET', KEYS[1], 'state', state, 'failures', failures, 'successes', successes, 'opened_at', opened_at)
redis.call('EXPIRE', KEYS[1], 86400)
return {state, tostring(failures), tostring(successes), tostring(opened_at)}
"""


class RedisBreakers:
    """Breaker state shared by every process through Redis."""

    PREFIX = "lynkr:breaker:"

    def __init__(self, url: str, config: BreakerConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self._redis = LoopRedis(url, scripts=(_LUA,))

    async def apply(self, provider_id: int, event: str) -> BreakerState:
        _, script = self._redis.get()
        args = [event, self.clock(), self.config.failure_threshold, self.config.success_threshold]
        raw = await script(keys=[f"{self.PREFIX}{provider_id}"], args=[*args, self.config.open_seconds])
        state, failures, successes, opened_at = (v.decode() if isinstance(v, bytes) else str(v) for v in raw)
        return BreakerState(state, int(float(failures)), int(float(successes)), float(opened_at))

    async def reset(self, provider_id: int) -> None:
        client, _ = self._redis.get()
        await client.delete(f"{self.PREFIX}{provider_id}")

    async def all(self) -> dict[int, BreakerState]:
        client, _ = self._redis.get()
        out: dict[int, BreakerState] = {}
        async for key in client.scan_iter(match=f"{self.PREFIX}*"):
            name = key.decode() if isinstance(key, bytes) else str(key)
            provider_id = int(name.rsplit(":", 1)[1])
            out[provider_id] = await self.apply(provider_id, "check")
        return out
