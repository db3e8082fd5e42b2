"""``_with_pings`` (gateway/upstream.py): a None whenever the upstream is silent for an interval, the read in flight
never cancelled by it, one task per stream, and nothing left running once the stream is closed.

The reads are scripted (each returns its chunk after a given delay), so the timings are the loop's own.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncGenerator, AsyncIterator
from typing import cast

import pytest

from gateway.upstream import _with_pings

INTERVAL = 0.1


class Script:
    """``read()`` returns the chunks in order, each after its delay; then b"" (the end) or ``error``."""

    def __init__(self, *steps: tuple[float, bytes], error: Exception | None = None) -> None:
        self.steps = list(steps)
        self.error = error
        self.started: list[float] = []  # loop time each read began
        self.cancelled = 0
        self.finished = 0

    async def read(self) -> bytes:
        loop = asyncio.get_running_loop()
        self.started.append(loop.time())
        try:
            if not self.steps:
                if self.error is not None:
                    raise self.error
                return b""
            delay, chunk = self.steps.pop(0)
            await asyncio.sleep(delay)
            self.finished += 1
            return chunk
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


async def timed(items: AsyncIterator[bytes | None]) -> list[tuple[float, bytes | None]]:
    loop = asyncio.get_running_loop()
    return [(loop.time(), item) async for item in items]


def other_tasks() -> set[asyncio.Task[object]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}


async def test_chunks_faster_than_the_interval_get_no_ping() -> None:
    script = Script(*[(0.01, b"c%d" % n) for n in range(5)])
    items = [item for _, item in await timed(_with_pings(script.read, INTERVAL))]
    assert items == [b"c0", b"c1", b"c2", b"c3", b"c4"]
    assert script.cancelled == 0


async def test_a_ping_each_interval_of_silence_and_the_read_is_never_cancelled() -> None:
    script = Script((0.0, b"a"), (0.35, b"b"), (0.0, b"c"))
    loop = asyncio.get_running_loop()
    began = loop.time()
    got = await timed(_with_pings(script.read, INTERVAL))
    items = [item for _, item in got]
    assert items[0] == b"a" and items[-2:] == [b"b", b"c"]
    pings = [at for at, item in got if item is None]
    assert items[1:-2] == [None] * len(pings)
    assert 2 <= len(pings) <= 3  # 0.35 s of silence at 0.1 s: at 0.1, 0.2, 0.3 (fewer only if the loop lagged)
    assert pings[0] - began >= INTERVAL * 0.95
    assert all(b - a >= INTERVAL * 0.95 for a, b in itertools.pairwise(pings))
    b_at = next(at for at, item in got if item == b"b")
    assert b_at - began >= 0.35 and b_at - pings[-1] < INTERVAL  # "b" came when it came, not a ping later
    # One read per chunk plus the end: the pings re-issued and cancelled nothing.
    assert script.cancelled == 0 and script.finished == 3 and len(script.started) == 4


async def test_the_interval_restarts_after_each_chunk() -> None:
    # Chunks every 0.07 s never leave 0.1 s of silence, however long the stream lasts.
    script = Script(*[(0.07, b"x")] * 6)
    items = [item for _, item in await timed(_with_pings(script.read, INTERVAL))]
    assert items == [b"x"] * 6


async def test_reading_ahead_is_bounded_to_one_chunk() -> None:
    script = Script(*[(0.0, b"x")] * 10)
    stream = _with_pings(script.read, INTERVAL)
    assert await anext(stream) == b"x"
    await asyncio.sleep(0.05)  # the consumer is busy: the reader must not run through the whole body
    assert len(script.started) <= 3
    assert [item async for item in stream] == [b"x"] * 9


async def test_an_error_comes_after_the_chunks_read_before_it() -> None:
    script = Script((0.0, b"a"), (0.0, b"b"), error=ConnectionResetError("gone"))
    got: list[bytes | None] = []
    with pytest.raises(ConnectionResetError, match="gone"):
        async for item in _with_pings(script.read, INTERVAL):
            got.append(item)
    assert got == [b"a", b"b"]
    await asyncio.sleep(0)
    assert other_tasks() == set()


async def test_closing_mid_read_cancels_the_reader_and_leaves_no_task() -> None:
    script = Script((0.0, b"a"), (30.0, b"never"))
    stream = cast(AsyncGenerator[bytes | None, None], _with_pings(script.read, INTERVAL))
    assert await anext(stream) == b"a"
    assert await anext(stream) is None  # silent: a ping, the read goes on
    assert script.cancelled == 0
    await stream.aclose()  # the stream is closed (client gone): now the read in flight is cancelled
    await asyncio.sleep(0)
    assert script.cancelled == 1
    assert other_tasks() == set()


async def test_cancelling_the_consumer_cancels_the_reader() -> None:
    script = Script((30.0, b"never"))

    async def consume() -> list[bytes | None]:
        return [item async for item in _with_pings(script.read, 10.0)]

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert script.cancelled == 1
    assert other_tasks() == set()
