"""Write-behind: work the hot path must not wait for (DB writes) is buffered and flushed in batches.

A flusher task per event loop wakes every ``interval`` seconds; ``writebehind_flush_all`` drains every buffer
(used at shutdown and by tests). A failed flush keeps its items for the next round, so nothing is lost to a
transient database error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Generic, TypeVar

from gateway.db import db_async

logger = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")


class CoalescingBuffer(Generic[K, V]):
    """Keeps the latest value per key (e.g. last-used time per API key) until flushed."""

    def __init__(self, name: str, flush: Callable[[dict[K, V]], None], interval: float) -> None:
        self.name = name
        self._flush = flush
        self.interval = interval
        self._items: dict[K, V] = {}
        self._task: asyncio.Task[None] | None = None
        _BUFFERS.append(self)  # type: ignore[arg-type]

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._ensure_task()

    def __len__(self) -> int:
        return len(self._items)

    def flush_sync(self) -> int:
        items, self._items = self._items, {}
        if not items:
            return 0
        try:
            self._flush(items)
        except Exception:
            logger.exception(
                "write-behind %s: flush of %d items failed; kept for the next round", self.name, len(items)
            )
            for key, value in items.items():
                self._items.setdefault(key, value)
            return 0
        return len(items)

    async def flush(self) -> int:
        if not self._items:
            return 0
        return await db_async(self.flush_sync)()

    def _ensure_task(self) -> None:
        if self._task is not None and not self._task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # called from sync code: the next async put or the shutdown flush writes it
        self._task = loop.create_task(self._run(), name=f"writebehind-{self.name}")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.flush()


_BUFFERS: list[CoalescingBuffer[object, object]] = []


def writebehind_flush_all() -> int:
    return sum(buffer.flush_sync() for buffer in list(_BUFFERS))
