"""One redis.asyncio client per event loop, with its Lua scripts registered.

A redis.asyncio connection belongs to the loop that opened it; a server process has one loop, tests have one per
test. Every Redis-backed store (breakers, rate limits, budgets, response cache) holds one of these.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any


class LoopRedis:
    def __init__(self, url: str, *, timeout: float = 2.0, scripts: tuple[str, ...] = ()) -> None:
        import redis.asyncio as aioredis

        self._url = url
        self._timeout = timeout
        self._scripts = scripts
        self._factory = aioredis.Redis.from_url
        self.by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[Any, ...]] = (
            weakref.WeakKeyDictionary()
        )

    def get(self) -> tuple[Any, ...]:
        """(client, *registered scripts) for the running loop."""
        loop = asyncio.get_running_loop()
        entry = self.by_loop.get(loop)
        if entry is None:
            client = self._factory(self._url, socket_timeout=self._timeout, socket_connect_timeout=self._timeout)
            entry = (client, *(client.register_script(script) for script in self._scripts))
            self.by_loop[loop] = entry
        return entry

    async def close(self) -> None:
        """Close the running loop's client (shutdown and tests)."""
        entry = self.by_loop.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            await entry[0].aclose()
