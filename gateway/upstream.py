"""One upstream attempt: send, check the status, decode the body into Anthropic events.

``UpstreamStream.prefetch()`` reads ahead until the first content event (or the end, or an error, or a bounded
wait) so the pipeline can still fail over to another target before the client has seen a byte; ``batches()`` then
replays what was read and continues live, one list of events per upstream read. After the first byte reaches the
client a failure can only end the stream with an Anthropic ``error`` event.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

from django.conf import settings

from gateway.selectors import KeyInfo
from gateway.sse import Event, StreamError
from providers.adapters import adapter_for
from providers.adapters.base import Adapter, InboundContext, RoutePreparer, StreamDecoder
from providers.adapters.http import (
    UpstreamDisconnected,
    UpstreamReadTimeout,
    UpstreamResponse,
    upstream_read_error_body,
    upstream_send,
)
from providers.routing import Route

logger = logging.getLogger(__name__)

_CONTENT_EVENTS = frozenset({"content_block_start", "content_block_delta", "message_delta", "message_stop"})


@dataclass(frozen=True, slots=True)
class AttemptInfo:
    provider: str
    upstream_model: str
    rule: str
    status: int
    error_type: str
    latency_ms: int


@dataclass(frozen=True, slots=True)
class RequestContext:
    request_id: str
    key: KeyInfo
    inbound: InboundContext
    attempts: list[AttemptInfo] = field(default_factory=list)  # filled by the pipeline, billed by metering


class UpstreamStream:
    """An open upstream answer. Iterate ``batches()`` once; ``aclose()`` always (idempotent)."""

    def __init__(
        self,
        ctx: RequestContext,
        route: Route,
        response: UpstreamResponse,
        decoder: StreamDecoder,
        started: float,
        record: bool = False,
        pings: bool = True,
    ) -> None:
        self.ctx = ctx
        # Pings reach only a streaming client; without them each chunk is read in this task, not handed over by a
        # reader task (~25 us less per non-streaming answer under Daphne, measured stage by stage).
        self._pings = pings
        self.route = route
        self._response = response
        self._decoder = decoder
        self._started = started
        self._closed = False
        self._live = self._decode()
        self._buffer: list[list[Event]] = []
        self._live_done = False
        self._pending: asyncio.Future[list[Event]] | None = None
        self.usage: dict[str, Any] = {}
        self.outcome = "incomplete"
        self.rule = ""
        self.attempts = 1
        self.ttft_ms: int | None = None
        self.on_close: Callable[[], Awaitable[None]] | None = None  # metering's finish, run once at close
        self.recorded: list[Event] | None = [] if record else None  # every event, for the response cache

    async def prefetch(self, wait: float) -> Event | None:
        """Read ahead until content starts; return the error event if the upstream failed before that.

        A read still pending when the wait runs out is kept (not cancelled: that would end the decoder) and
        ``batches()`` picks it up, so a slow upstream is delivered whole, only no longer replaceable."""
        deadline = time.monotonic() + wait
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if self._pending is None:
                self._pending = asyncio.ensure_future(anext(self._live))
            done, _ = await asyncio.wait({self._pending}, timeout=remaining)
            if not done:
                return None
            pending, self._pending = self._pending, None
            try:
                batch = pending.result()
            except StopAsyncIteration:
                self._live_done = True
                return None
            self._buffer.append(batch)
            if self.recorded is not None:
                self.recorded.extend(batch)
            for event in batch:
                kind = event.get("type")
                if kind == "error":
                    return event
                if kind in _CONTENT_EVENTS:
                    return None

    async def batches(self) -> AsyncIterator[list[Event]]:
        """The events, one list per upstream read: what arrived together is written to the client together (one
        ASGI message, not one per event), which adds no latency and saves the server a write per event."""
        buffered, self._buffer = self._buffer, []
        for batch in buffered:
            yield batch
        if self._pending is not None:
            pending, self._pending = self._pending, None
            try:
                batch = await pending
            except StopAsyncIteration:
                self._live_done = True
            else:
                if self.recorded is not None:
                    self.recorded.extend(batch)
                yield batch
        if not self._live_done:
            async for batch in self._live:
                if self.recorded is not None:
                    self.recorded.extend(batch)
                yield batch

    async def _decode(self) -> AsyncIterator[list[Event]]:
        finished = False
        started = False
        batch: list[Event] = []  # decoded from the current read; an error ends it (events before it are kept)
        try:
            reads = (
                _with_pings(self._response.read_chunk, settings.LYNKR_STREAM_PING_INTERVAL)
                if self._pings
                else _reads(self._response.read_chunk)
            )
            async for chunk in reads:
                if chunk is None:
                    # The upstream is silent (a model thinking, a server queueing): tell the client we are alive.
                    if started and not finished:
                        yield [{"type": "ping"}]
                    continue
                for event in self._decoder.feed(chunk):
                    started = True
                    finished = self._observe(event) or finished
                    batch.append(event)
                if batch:
                    yield batch
                    batch = []
            for event in self._decoder.flush():
                finished = self._observe(event) or finished
                batch.append(event)
            if not finished:
                self.outcome = "truncated"
                batch.append(_error_event("api_error", "upstream stream ended before message_stop"))
            if batch:
                yield batch
        except StreamError as exc:
            self.outcome = "stream_error"
            yield [*batch, {"type": "error", "error": exc.error}]
        except UpstreamReadTimeout:
            self.outcome = "timeout"
            yield [*batch, _error_event("timeout_error", "upstream stopped sending (read timeout)")]
        except UpstreamDisconnected as exc:
            self.outcome = "upstream_disconnect"
            yield [*batch, _error_event("api_error", exc.message)]  # "upstream connection lost: <cause>"

    def _observe(self, event: Event) -> bool:
        kind = event.get("type")
        if self.ttft_ms is None and kind in ("content_block_start", "content_block_delta"):
            self.ttft_ms = int((time.monotonic() - self._started) * 1000)
        if kind == "message_start":
            message = event.get("message")
            if isinstance(message, dict):
                # The client sees the model it asked for, whatever the upstream calls it.
                message["model"] = self.route.client_model
                self.usage.update(message.get("usage") or {})
        elif kind == "message_delta":
            self.usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
        elif kind == "message_stop":
            self.outcome = "ok"
            return True
        elif kind == "error":
            self.outcome = "upstream_error_event"
            return True
        return False

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._pending is not None and not self._pending.done():
            self._pending.cancel()
        try:
            await self._response.aclose()
            if self.on_close is not None:
                await self.on_close()
        finally:
            # Written once this task yields, which is after the answer went out: the line (record, JSON formatting,
            # the write; ~11 us in a loop, a few % of a request's CPU on a busy server) is not on the client's time.
            # Its content is fixed here.
            asyncio.get_running_loop().call_soon(
                functools.partial(
                    logger.info,
                    "request_id=%s key=%s route=%s provider=%s client_model=%s upstream_model=%s attempts=%d "
                    "outcome=%s input_tokens=%s output_tokens=%s duration_ms=%.1f",
                    self.ctx.request_id,
                    self.ctx.key.prefix,
                    self.rule,
                    self.route.provider.name,
                    self.route.client_model,
                    self.route.upstream_model,
                    self.attempts,
                    self.outcome,
                    self.usage.get("input_tokens"),
                    self.usage.get("output_tokens"),
                    (time.monotonic() - self._started) * 1000,
                )
            )  # call_soon runs it in a copy of this context: the record gets this request's log fields


async def _reads(read: Callable[[], Awaitable[bytes]]) -> AsyncIterator[bytes | None]:
    """The chunks ``read`` returns, until b""."""
    while chunk := await read():
        yield chunk


async def _with_pings(read: Callable[[], Awaitable[bytes]], interval: float) -> AsyncIterator[bytes | None]:
    """The chunks ``read`` returns (until b""), with a None whenever ``interval`` seconds pass without one."""
    reader = _PingingReader(read, interval)
    try:
        while True:
            chunk = await reader.next()
            if chunk is not None and not chunk:
                return
            yield chunk
    finally:
        reader.close()


class _PingingReader:
    """One task per stream reads ahead by at most one chunk and hands it over; ``next()`` returns None instead when
    ``interval`` passes first. A ping never cancels the read in flight.

    A task and an ``asyncio.wait`` per chunk cost ~20 us each time (a profile put ~7% of the server's main thread
    there); here a chunk costs one future, and the ping timer is re-armed only when it fires: ``next()`` just moves
    the deadline."""

    __slots__ = ("_deadline", "_interval", "_item", "_loop", "_read", "_room", "_task", "_timer", "_waiter")

    def __init__(self, read: Callable[[], Awaitable[bytes]], interval: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._read = read
        self._interval = interval
        self._item: bytes | BaseException | None = None  # handed over, not yet taken (None: nothing)
        self._waiter: asyncio.Future[None] | None = None  # next() waiting for an item or a ping
        self._room: asyncio.Future[None] | None = None  # the task waiting for next() to take the item
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0

    async def next(self) -> bytes | None:
        item = self._item
        if item is None:
            if self._task is None:
                self._task = self._loop.create_task(self._run())
            self._waiter = waiter = self._loop.create_future()
            self._deadline = self._loop.time() + self._interval
            if self._timer is None:
                self._timer = self._loop.call_at(self._deadline, self._on_timer)
            try:
                await waiter
            finally:
                self._waiter = None
            item = self._item
            if item is None:
                return None  # interval passed: a ping (the read goes on)
        self._item = None
        room = self._room
        if room is not None:
            self._room = None
            if not room.done():
                room.set_result(None)
        if isinstance(item, BaseException):
            raise item
        return item

    async def _run(self) -> None:
        item: bytes | BaseException
        try:
            while True:
                try:
                    item = await self._read()
                except Exception as exc:  # handed over in order, after the chunks read before it
                    item = exc
                if self._item is not None:
                    self._room = room = self._loop.create_future()
                    await room
                self._item = item
                waiter = self._waiter
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
                if isinstance(item, BaseException) or not item:
                    return  # the end (b"") or the error
        except asyncio.CancelledError:
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                waiter.cancel()  # nobody else will hand next() anything
            raise

    def _on_timer(self) -> None:
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return  # not waiting now: the next wait arms a new timer
        if self._loop.time() >= self._deadline:
            waiter.set_result(None)
        else:  # the deadline moved on since this timer was armed
            self._timer = self._loop.call_at(self._deadline, self._on_timer)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None and not self._task.done():
            self._task.cancel()  # a read in flight may be cancelled: the stream is being closed


def _error_event(error_type: str, message: str) -> Event:
    return {"type": "error", "error": {"type": error_type, "message": message}}


async def upstream_open(
    ctx: RequestContext, route: Route, body: dict[str, Any], *, record: bool = False
) -> UpstreamStream:
    """One attempt: send and return the open stream once the upstream answered 2xx, else raise its mapped error."""
    started = time.monotonic()
    adapter: Adapter = adapter_for(route.provider.kind)
    if _prepares(type(adapter)):
        route = await cast(RoutePreparer, adapter).prepare(route)
    upstream = adapter.build_request(route, body, ctx.inbound)
    response = await upstream_send(upstream, provider_name=route.provider.name)
    if response.status_code >= 400:
        error_body = await upstream_read_error_body(response)
        raise adapter.error_from_response(route.provider, response.status_code, response.headers, error_body)
    decoder = adapter.stream_decoder(route, body, ctx.inbound, response.headers.get("content-type", ""))
    stream = UpstreamStream(ctx, route, response, decoder, started, record, pings=bool(body.get("stream")))
    _close_with_task(stream)
    return stream


@functools.cache
def _prepares(kind: type) -> bool:
    """``isinstance(adapter, RoutePreparer)``, once per adapter class: a runtime-checkable Protocol's check inspects
    every member on every call (~7 us, on each attempt)."""
    return issubclass(kind, RoutePreparer)


def _close_with_task(stream: UpstreamStream) -> None:
    """Close the upstream when the request's task ends, even if the response body was never iterated
    (a client that disconnects between the headers and the first chunk cancels the task before that)."""
    task = asyncio.current_task()
    if task is None:
        return
    loop = asyncio.get_running_loop()
    task.add_done_callback(lambda _: None if stream._closed or loop.is_closed() else loop.create_task(stream.aclose()))
