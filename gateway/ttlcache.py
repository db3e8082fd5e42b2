"""Per-process TTL caches of what every request reads from the database (its key, workspace, budgets, rate limits,
prices), refreshed after ``LYNKR_KEY_CACHE_TTL`` seconds so an admin change applies everywhere within that time.

Concurrent misses of one key share one load. Without that, when an entry expired under load every request in
flight missed it together: at 64 concurrent requests each expiry cost 64 identical queries for each of the five
caches, about 5 % of the process's CPU (py-spy, bench/README.md). A load that fails is not cached: its waiters get
the error, and the next request loads again. A waiter that is cancelled (a client hanging up) does not cancel the
load the others wait for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from django.conf import settings

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

MAX_ENTRIES = 50_000


class TtlCache(Generic[K, V]):
    def __init__(self, *, max_entries: int = MAX_ENTRIES) -> None:
        self._items: dict[K, tuple[V, float]] = {}
        self._loading: dict[K, asyncio.Task[V]] = {}
        self._max_entries = max_entries

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The cached value, or ``await load()`` once for every caller that misses while it runs."""
        hit = self._items.get(key)
        if hit is not None and time.monotonic() - hit[1] < settings.LYNKR_KEY_CACHE_TTL:
            return hit[0]
        loop = asyncio.get_running_loop()
        task = self._loading.get(key)
        if task is None or task.done() or task.get_loop() is not loop:
            task = loop.create_task(self._load(key, load))
            self._loading[key] = task
        # shield: a cancelled waiter leaves the load running for the others (and marks a failure as retrieved).
        return await asyncio.shield(task)

    async def _load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        started = time.monotonic()  # the entry ages from before the query: never served past its TTL
        try:
            value = await load()
        finally:
            if self._loading.get(key) is asyncio.current_task():
                del self._loading[key]
        if len(self._items) >= self._max_entries:
            self._items.clear()
        self._items[key] = (value, started)
        return value

    def clear(self) -> None:
        self._items.clear()
        self._loading.clear()
