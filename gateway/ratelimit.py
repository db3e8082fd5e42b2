"""Per-minute rate limits (requests, input tokens, output tokens) per API key and per user, as token buckets.

Anthropic's model (https://docs.anthropic.com/en/api/rate-limits): each limit is a bucket holding up to ``limit``
units, "continuously replenished up to the limit" (limit/60 per second), starting full. Admitting a request takes 1
from the requests bucket and its estimated input tokens from the input bucket; its output tokens are charged after
the answer (``settle``) and may drive the output bucket into debt, which refuses admits until it has refilled to 0.
Responses carry ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}``
(reset: the RFC 3339 time the bucket is full again); a refusal becomes a 429 with ``retry-after`` in seconds.

An input larger than the whole bucket could never fit, so a bucket only needs min(amount, capacity) to admit, then
takes the full amount: an oversized request passes once the bucket is full and pays for it in waiting. A limit of
0 admits nothing (Envoy's token bucket reads 0 the same way).

The rules are one pure function, ``bucket_take``, applied in process memory (``LocalRateLimiter``, the embedded
default) or by a Lua script that mirrors it line for line, atomically in Redis (``RedisRateLimiter``: exact across
processes). Numbers cross between Python and Lua as round-trip strings (repr / %.17g), so both stores compute the
same doubles and give the same decisions. Both read time.time(): hosts sharing one Redis need synchronised clocks
(a clock behind a bucket's last update refills nothing rather than going back).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Protocol

from django.conf import settings

from providers.redis_clients import LoopRedis

KINDS = ("requests", "input_tokens", "output_tokens")
_HEADER_NAMES = {
    kind: tuple(f"anthropic-ratelimit-{name}-{field}" for field in ("limit", "remaining", "reset"))
    for kind, name in [
        ("requests", "requests"),
        ("tokens", "tokens"),
        ("input_tokens", "input-tokens"),
        ("output_tokens", "output-tokens"),
    ]
}
ZERO_LIMIT_WAIT = 60.0  # a limit of 0 never admits; retry-after is then a nominal minute
_MIN_TTL = 120  # Redis forgets a subject ~2 minutes after its last write (a missing bucket is a full one)

# (kind, capacity, refill per second, amount to take)
Spec = tuple[str, int, float, int]
# (level to report, wait) per bucket
Rows = list[tuple[float, float]]


@dataclass(frozen=True, slots=True)
class Limits:
    requests_per_minute: int | None = None
    input_tokens_per_minute: int | None = None
    output_tokens_per_minute: int | None = None

    @property
    def unlimited(self) -> bool:
        return (
            self.requests_per_minute is None
            and self.input_tokens_per_minute is None
            and self.output_tokens_per_minute is None
        )

    def specs(self, requests: int, input_tokens: int, output_tokens: int, *, skip_zero: bool = False) -> list[Spec]:
        """The buckets of the limits that are set, each with the amount to take from it."""
        out: list[Spec] = []
        caps = (self.requests_per_minute, self.input_tokens_per_minute, self.output_tokens_per_minute)
        for kind, cap, amount in zip(KINDS, caps, (requests, input_tokens, output_tokens), strict=True):
            if cap is not None and not (skip_zero and amount == 0):
                out.append((kind, cap, cap / 60.0, amount))
        return out


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after: int  # whole seconds (>= 1) when refused, 0 when allowed
    headers: dict[str, str]  # anthropic-ratelimit-* for the limits that are set
    exceeded: str = ""  # "requests" | "input_tokens" | "output_tokens" when refused


def bucket_take(
    level: float, capacity: float, rate: float, last: float, now: float, amount: float, *, force: bool = False
) -> tuple[float, float, float]:
    """One bucket at ``now``: (level refilled, level after taking ``amount``, seconds until it could be taken).

    Taken when the wait is 0 (the caller stores "after"); refused otherwise ("after" == "before"). ``force`` takes
    unconditionally (a charge after the fact; a negative amount gives back, never above capacity). Pure; _LUA_TAKE
    is the same function.
    """
    if capacity <= 0:
        return 0.0, 0.0, (0.0 if force else ZERO_LIMIT_WAIT)
    elapsed = now - last
    if elapsed < 0:
        elapsed = 0.0
    before = min(capacity, level + elapsed * rate)
    need = min(amount, capacity)
    if force or before + 1e-9 >= need:  # float noise (59 s of 1/60 per second) must not refuse a due request
        return before, min(capacity, before - amount), 0.0
    return before, before, (need - before) / rate


def _ceil(seconds: float) -> int:
    return math.ceil(seconds - 1e-6)  # whole seconds, rounded up, but 1.0000000000000002 is 1


def _rfc3339(at: float) -> str:
    return _rfc3339_second(_ceil(at))


@lru_cache(maxsize=512)
def _rfc3339_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))


def _decision(now: float, specs: list[Spec], allowed: bool, rows: Rows) -> Decision:
    """Headers and verdict from each bucket's (level, wait); the same for both stores."""
    headers: dict[str, str] = {}
    token_limit = token_remaining = 0
    token_reset = -1.0
    worst_wait, worst_kind = 0.0, ""
    for (kind, cap, rate, _), (level, wait) in zip(specs, rows, strict=True):
        remaining = max(0, math.floor(level + 1e-9))
        full_at = now + ((cap - level) / rate if cap > 0 else 0.0)
        limit_h, remaining_h, reset_h = _HEADER_NAMES[kind]
        headers[limit_h], headers[remaining_h], headers[reset_h] = str(cap), str(remaining), _rfc3339(full_at)
        if kind != "requests":
            token_limit, token_remaining = token_limit + cap, token_remaining + remaining
            token_reset = max(token_reset, full_at)
        if wait > worst_wait:
            worst_wait, worst_kind = wait, kind
    if token_reset >= 0:  # the combined view (input + output) that clients read as anthropic-ratelimit-tokens-*
        limit_h, remaining_h, reset_h = _HEADER_NAMES["tokens"]
        headers[limit_h], headers[remaining_h] = str(token_limit), str(token_remaining)
        headers[reset_h] = _rfc3339(token_reset)
    if allowed:
        return Decision(True, 0, headers)
    return Decision(False, max(1, _ceil(worst_wait)), headers, worst_kind)


def merge_decisions(decisions: list[Decision]) -> Decision:
    """Key limits AND user limits: refused if any refuses (the longest wait); headers from the tightest of each kind
    (lowest remaining; on a tie, the later reset)."""
    if len(decisions) == 1:
        return decisions[0]
    headers: dict[str, str] = {}
    for limit_h, remaining_h, reset_h in _HEADER_NAMES.values():
        best: tuple[int, str] | None = None
        for d in decisions:
            remaining = d.headers.get(remaining_h)
            if remaining is not None:
                rank = (int(remaining), d.headers[reset_h])
                if best is None or rank[0] < best[0] or (rank[0] == best[0] and rank[1] > best[1]):
                    best = rank
                    headers[limit_h], headers[remaining_h], headers[reset_h] = d.headers[limit_h], remaining, rank[1]
    refused = [d for d in decisions if not d.allowed]
    if not refused:
        return Decision(True, 0, headers)
    worst = max(refused, key=lambda d: d.retry_after)
    return Decision(False, worst.retry_after, headers, worst.exceeded)


class RateLimiter(Protocol):
    async def admit(self, subject: str, limits: Limits, *, input_tokens: int) -> Decision:
        """Atomically: if every set bucket can take 1 request and ``input_tokens`` (and the output bucket is not in
        debt), take them; else take nothing and refuse with the longest wait."""
        ...

    async def settle(self, subject: str, limits: Limits, *, output_tokens: int, input_correction: int = 0) -> None:
        """After the answer: charge the output tokens (may leave the bucket in debt) and correct the input charge by
        real - estimated input tokens."""
        ...

    async def release(self, subject: str, limits: Limits, *, input_tokens: int) -> None:
        """Undo an admit whose request did not go ahead (the other subject refused it): give back 1 request and
        ``input_tokens``."""
        ...


class LocalRateLimiter:
    """Token buckets in process memory (the embedded default: one server process)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # (subject, kind) -> (level, last)
        self._lock = threading.Lock()  # one event loop normally; a lock costs ~0.1 us and covers threads too

    def _apply(self, subject: str, specs: list[Spec], now: float, force: bool) -> tuple[bool, Rows]:
        """The Python twin of _LUA: every bucket or none."""
        with self._lock:
            taken: list[tuple[float, float, float, float]] = []  # before, after, wait, last
            for kind, cap, rate, amount in specs:
                level, last = self._buckets.get((subject, kind), (float(cap), now))
                before, after, wait = bucket_take(level, float(cap), rate, last, now, amount, force=force)
                taken.append((before, after, wait, max(last, now)))
            ok = all(t[2] == 0 for t in taken)
            if ok:
                for (kind, *_), (_, after, _, last) in zip(specs, taken, strict=True):
                    self._buckets[(subject, kind)] = (after, last)
            return ok, [(t[1] if ok else t[0], t[2]) for t in taken]

    async def admit(self, subject: str, limits: Limits, *, input_tokens: int) -> Decision:
        if limits.unlimited:
            return Decision(True, 0, {})
        specs, now = limits.specs(1, input_tokens, 0), self.clock()
        ok, rows = self._apply(subject, specs, now, force=False)
        return _decision(now, specs, ok, rows)

    async def settle(self, subject: str, limits: Limits, *, output_tokens: int, input_correction: int = 0) -> None:
        specs = limits.specs(0, input_correction, output_tokens, skip_zero=True)
        if specs:
            self._apply(subject, specs, self.clock(), force=True)

    async def release(self, subject: str, limits: Limits, *, input_tokens: int) -> None:
        specs = limits.specs(-1, -input_tokens, 0, skip_zero=True)
        if specs:
            self._apply(subject, specs, self.clock(), force=True)


# bucket_take in Lua; keep the two in step (tests replay the same scenarios on both stores).
_LUA_TAKE = """
local function take(level, cap, rate, last, now, amount, force)
  if cap <= 0 then
    if force then return 0, 0, 0 end
    return 0, 0, tonumber(ARGV[4])
  end
  local elapsed = now - last
  if elapsed < 0 then elapsed = 0 end
  local before = math.min(cap, level + elapsed * rate)
  local need = math.min(amount, cap)
  if force or before + 1e-9 >= need then return before, math.min(cap, before - amount), 0 end
  return before, before, (need - before) / rate
end
"""

# LocalRateLimiter._apply, atomically. KEYS[1] = the subject's hash (fields <kind> = level, <kind>@ = last update).
# ARGV = now, force ('1'/'0'), min ttl, zero-limit wait, then (kind, capacity, rate, amount) per bucket.
# Returns {1 if taken else 0, level, wait, level, wait, ...} with numbers as %.17g strings (a Lua number reply
# would be truncated to an integer).
_LUA = (
    _LUA_TAKE
    + """
local now, force, ttl = tonumber(ARGV[1]), ARGV[2] == '1', tonumber(ARGV[3])
local rows, ok = {}, true
for i = 5, #ARGV, 4 do
  local kind, cap, rate, amount = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  local s = redis.call('HMGET', KEYS[1], kind, kind .. '@')
  local level, last = tonumber(s[1]) or cap, tonumber(s[2]) or now
  local before, after, wait = take(level, cap, rate, last, now, amount, force)
  if wait ~= 0 then ok = false end
  rows[#rows + 1] = {kind, before, after, wait, math.max(last, now), cap, rate}
end
local out = {ok and 1 or 0}
for _, r in ipairs(rows) do
  if ok then
    redis.call('HSET', KEYS[1], r[1], string.format('%.17g', r[3]), r[1] .. '@', string.format('%.17g', r[5]))
    if r[6] > 0 then ttl = math.max(ttl, math.ceil((r[6] - r[3]) / r[7]) + 1) end
    out[#out + 1] = string.format('%.17g', r[3])
  else
    out[#out + 1] = string.format('%.17g', r[2])
  end
  out[#out + 1] = string.format('%.17g', r[4])
end
if ok and #rows > 0 then
  -- never shorten: a bucket this call did not touch may still be in debt for longer
  redis.call('EXPIRE', KEYS[1], math.max(ttl, redis.call('TTL', KEYS[1])))
end
return out
"""
)


class RedisRateLimiter:
    """Token buckets shared by every process through Redis; each operation is one atomic script call."""

    PREFIX = "lynkr:rl:"

    def __init__(self, url: str, *, prefix: str = PREFIX, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.prefix = prefix
        self._redis = LoopRedis(url, scripts=(_LUA,))

    async def _apply(self, subject: str, specs: list[Spec], now: float, force: bool) -> tuple[bool, Rows]:
        _, script = self._redis.get()
        args: list[str | int] = [repr(now), "1" if force else "0", _MIN_TTL, repr(ZERO_LIMIT_WAIT)]
        for kind, cap, rate, amount in specs:
            args += [kind, cap, repr(rate), amount]
        raw = await script(keys=[self.prefix + subject], args=args)
        values = [float(v) for v in raw[1:]]
        return int(raw[0]) == 1, list(zip(values[::2], values[1::2], strict=True))

    async def admit(self, subject: str, limits: Limits, *, input_tokens: int) -> Decision:
        if limits.unlimited:
            return Decision(True, 0, {})
        specs, now = limits.specs(1, input_tokens, 0), self.clock()
        ok, rows = await self._apply(subject, specs, now, force=False)
        return _decision(now, specs, ok, rows)

    async def settle(self, subject: str, limits: Limits, *, output_tokens: int, input_correction: int = 0) -> None:
        specs = limits.specs(0, input_correction, output_tokens, skip_zero=True)
        if specs:
            await self._apply(subject, specs, self.clock(), force=True)

    async def release(self, subject: str, limits: Limits, *, input_tokens: int) -> None:
        specs = limits.specs(-1, -input_tokens, 0, skip_zero=True)
        if specs:
            await self._apply(subject, specs, self.clock(), force=True)


@cache
def rate_limiter() -> RateLimiter:
    """The process's limiter: Redis when configured (exact across processes), else in memory."""
    if settings.REDIS_URL:
        return RedisRateLimiter(settings.REDIS_URL)
    return LocalRateLimiter()
