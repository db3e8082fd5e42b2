"""``UpstreamStream.batches()`` (gateway/upstream.py): the events of one upstream read travel together, so the SSE
generator writes them to the client in one ASGI message; prefetch, errors and truncation keep their order.

The response and the decoder are scripted: each read returns one chunk of comma-separated event names.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

from gateway.sse import StreamError
from gateway.upstream import RequestContext, UpstreamStream
from providers.adapters.base import InboundContext, StreamDecoder
from providers.routing import Route

KINDS = {
    "start": {"type": "message_start", "message": {"usage": {"input_tokens": 3}}},
    "block": {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    "delta": {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}},
    "stop": {"type": "message_stop"},
}


class Response:
    def __init__(self, *chunks: bytes) -> None:
        self.chunks = list(chunks)
        self.closed = False

    async def read_chunk(self) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""

    async def aclose(self) -> None:
        self.closed = True


class Decoder:
    """``b"start,block"`` -> those events; ``boom`` raises the upstream's error event mid-read."""

    def __init__(self, tail: tuple[str, ...] = ()) -> None:
        self.tail = tail

    def feed(self, chunk: bytes) -> Iterator[dict[str, Any]]:
        for name in chunk.decode().split(","):
            if name == "boom":
                raise StreamError({"type": "overloaded_error", "message": "busy"})
            yield dict(KINDS[name])

    def flush(self) -> Iterator[dict[str, Any]]:
        return (dict(KINDS[name]) for name in self.tail)


def stream_of(*chunks: bytes, tail: tuple[str, ...] = (), pings: bool = True) -> UpstreamStream:
    key = SimpleNamespace(prefix="sk-lynkr-test")
    ctx = RequestContext(request_id="req_1", key=cast(Any, key), inbound=InboundContext())
    route = cast(
        Route, SimpleNamespace(client_model="claude-x", upstream_model="m", provider=SimpleNamespace(name="p"))
    )
    decoder = cast(StreamDecoder, Decoder(tail))
    response = cast(Any, Response(*chunks))
    return UpstreamStream(ctx, route, response, decoder, time.monotonic(), record=True, pings=pings)


def types(batch: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in batch]


async def test_one_read_is_one_batch_and_prefetch_replays_it() -> None:
    stream = stream_of(b"start,block,delta", b"delta,delta", b"stop")
    assert await stream.prefetch(1.0) is None
    batches = [types(batch) async for batch in stream.batches()]
    await stream.aclose()
    assert batches == [
        ["message_start", "content_block_start", "content_block_delta"],
        ["content_block_delta", "content_block_delta"],
        ["message_stop"],
    ]
    assert stream.outcome == "ok" and stream.usage == {"input_tokens": 3}
    assert types(cast(list[dict[str, Any]], stream.recorded)) == [t for batch in batches for t in batch]


async def test_prefetch_reads_until_content_across_reads() -> None:
    stream = stream_of(b"start", b"block,delta", b"stop")
    assert await stream.prefetch(1.0) is None
    assert [types(batch) async for batch in stream.batches()] == [
        ["message_start"],
        ["content_block_start", "content_block_delta"],
        ["message_stop"],
    ]
    await stream.aclose()


async def test_an_error_mid_read_keeps_the_events_before_it() -> None:
    stream = stream_of(b"start,block,delta", b"delta,boom")
    assert await stream.prefetch(1.0) is None
    batches = [batch async for batch in stream.batches()]
    await stream.aclose()
    assert types(batches[-1]) == ["content_block_delta", "error"]
    assert batches[-1][-1]["error"] == {"type": "overloaded_error", "message": "busy"}
    assert stream.outcome == "stream_error"


async def test_an_error_before_content_is_what_prefetch_returns() -> None:
    stream = stream_of(b"start,boom")
    error = await stream.prefetch(1.0)
    await stream.aclose()
    assert error is not None and error["error"]["type"] == "overloaded_error"


async def test_a_truncated_stream_ends_its_last_batch_with_an_error() -> None:
    stream = stream_of(b"start,block,delta", tail=("delta",))
    events = [event["type"] async for batch in stream.batches() for event in batch]
    await stream.aclose()
    assert events == ["message_start", "content_block_start", "content_block_delta", "content_block_delta", "error"]
    assert stream.outcome == "truncated"


class Silent(Response):
    """Reads that take ``pause`` seconds each, and record the task they run in."""

    def __init__(self, pause: float, *chunks: bytes) -> None:
        super().__init__(*chunks)
        self.pause = pause
        self.tasks: set[asyncio.Task[Any] | None] = set()

    async def read_chunk(self) -> bytes:
        self.tasks.add(asyncio.current_task())
        await asyncio.sleep(self.pause)
        return await super().read_chunk()


async def test_without_pings_reads_run_in_the_readers_task_and_silence_adds_nothing(settings: Any) -> None:
    """A non-streaming client's answer is read without the ping reader (gateway/upstream.py): no ping however long
    the upstream is silent, and no task of its own per stream."""
    settings.LYNKR_STREAM_PING_INTERVAL = 0.01
    for pings in (True, False):
        stream = stream_of(pings=pings)
        silent = Silent(0.05, b"start,block,delta", b"stop")
        stream._response = cast(Any, silent)
        events = [event["type"] async for batch in stream.batches() for event in batch]
        await stream.aclose()
        assert ("ping" in events) is pings
        assert [e for e in events if e != "ping"] == ["message_start", "content_block_start", "content_block_delta",
                                                      "message_stop"]  # fmt: skip
        assert (silent.tasks == {asyncio.current_task()}) is not pings  # with pings, a reader task reads
