"""gateway/ttlcache.py: per-process TTL caches whose concurrent misses share one load."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from gateway.ttlcache import TtlCache


class Loader:
    def __init__(self, value: Any = "v", *, gate: asyncio.Event | None = None, error: Exception | None = None):
        self.calls = 0
        self.value, self.gate, self.error = value, gate, error

    async def __call__(self) -> Any:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return f"{self.value}{self.calls}"


@pytest.fixture
def ttl(settings: Any) -> Any:
    settings.LYNKR_KEY_CACHE_TTL = 60.0
    return settings


async def test_concurrent_misses_share_one_load(ttl: Any) -> None:
    cache: TtlCache[str, str] = TtlCache()
    gate = asyncio.Event()
    load = Loader(gate=gate)
    waiters = [asyncio.create_task(cache.get("k", load)) for _ in range(64)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*waiters) == ["v1"] * 64
    assert load.calls == 1
    assert await cache.get("k", load) == "v1"  # then a hit
    assert load.calls == 1
    assert await cache.get("other", load) == "v2"  # each key loads on its own


async def test_an_entry_is_loaded_again_once_older_than_the_ttl(ttl: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("gateway.ttlcache.time.monotonic", lambda: now[0])
    cache: TtlCache[str, str] = TtlCache()
    load = Loader()
    assert await cache.get("k", load) == "v1"
    now[0] += 59.9
    assert await cache.get("k", load) == "v1"
    now[0] += 0.1
    assert await cache.get("k", load) == "v2"
    ttl.LYNKR_KEY_CACHE_TTL = 0.0  # no caching at all
    assert await cache.get("k", load) == "v3"
    assert await cache.get("k", load) == "v4"


async def test_a_failed_load_reaches_every_waiter_and_is_not_cached(ttl: Any) -> None:
    cache: TtlCache[str, str] = TtlCache()
    gate = asyncio.Event()
    load = Loader(gate=gate, error=RuntimeError("database unavailable"))
    waiters = [asyncio.create_task(cache.get("k", load)) for _ in range(3)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert [str(r) for r in results] == ["database unavailable"] * 3
    assert load.calls == 1
    load.error = None
    assert await cache.get("k", load) == "v2"


async def test_a_cancelled_waiter_does_not_cancel_the_load_others_wait_for(ttl: Any) -> None:
    cache: TtlCache[str, str] = TtlCache()
    gate = asyncio.Event()
    load = Loader(gate=gate)
    first = asyncio.create_task(cache.get("k", load))
    second = asyncio.create_task(cache.get("k", load))
    await asyncio.sleep(0)
    first.cancel()  # e.g. its client hung up
    gate.set()
    assert await second == "v1"
    with pytest.raises(asyncio.CancelledError):
        await first
    assert load.calls == 1
    assert await cache.get("k", load) == "v1"


async def test_a_failed_load_with_no_waiter_left_is_not_reported_as_unretrieved(ttl: Any) -> None:
    cache: TtlCache[str, str] = TtlCache()
    gate = asyncio.Event()
    load = Loader(gate=gate, error=RuntimeError("boom"))
    reported: list[Any] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: reported.append(context))
    waiter = asyncio.create_task(cache.get("k", load))
    await asyncio.sleep(0)
    waiter.cancel()
    gate.set()
    await asyncio.sleep(0.01)
    gc.collect()
    assert reported == []


def test_a_load_left_pending_on_another_event_loop_is_not_awaited(settings: Any) -> None:
    settings.LYNKR_KEY_CACHE_TTL = 60.0
    cache: TtlCache[str, str] = TtlCache()
    never = Loader(gate=asyncio.Event())

    async def abandon() -> None:
        task = asyncio.create_task(cache.get("k", never))
        await asyncio.sleep(0)
        task.cancel()

    asyncio.run(abandon())  # that loop closes with the load still pending
    assert asyncio.run(cache.get("k", Loader("fresh"))) == "fresh1"


async def test_clear_and_the_entry_bound(ttl: Any) -> None:
    cache: TtlCache[int, str] = TtlCache(max_entries=2)
    load = Loader()
    for key in (1, 2):
        await cache.get(key, load)
    assert await cache.get(1, load) == "v1"
    await cache.get(3, load)  # the bound is reached: the cache starts afresh
    assert await cache.get(1, load) == "v4"
    cache.clear()
    assert await cache.get(1, load) == "v5"
