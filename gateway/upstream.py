"""One upstream attempt: send, check the status, decode the body into Anthropic events.

``UpstreamStream.prefetch()`` reads ahead until the first content event (or the end, or an error, or a bounded
wait) so the pipeline can still fail over to another target before the client has seen a byte; ``events()`` then
replays what was read and continues live. After the first byte reaches the client a failure can only end the
stream with an Anthropic ``error`` event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from django.conf import settings

from gateway.selectors import KeyInfo
from gateway.sse import Event, StreamError
from providers.adapters import adapter_for
from providers.adapters.base import Adapter, InboundContext, RoutePreparer, StreamDecoder
from providers.adapters.http import upstream_read_error_body, upstream_send
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
    """An open upstream answer. Iterate ``events()`` once; ``aclose()`` always (idempotent)."""

    def __init__(
        self,
        ctx: RequestContext,
        route: Route,
        response: httpx.Response,
        decoder: StreamDecoder,
        started: float,
        record: bool = False,
    ) -> None:
        self.ctx = ctx
        self.route = route
        self._response = response
        self._decoder = decoder
        self._started = started
        self._closed = False
        self._live = self._decode()
        self._buffer: list[Event] = []
        self._live_done = False
        self._pending: asyncio.Future[Event] | None = None
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
        ``events()`` picks it up, so a slow upstream is delivered whole, only no longer replaceable."""
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
                event = pending.result()
            except StopAsyncIteration:
                self._live_done = True
                return None
            self._buffer.append(event)
            if self.recorded is not None:
                self.recorded.append(event)
            kind = event.get("type")
            if kind == "error":
                return event
            if kind in _CONTENT_EVENTS:
                return None

    async def events(self) -> AsyncIterator[Event]:
        buffered, self._buffer = self._buffer, []
        for event in buffered:
            yield event
        if self._pending is not None:
            pending, self._pending = self._pending, None
            try:
                event = await pending
            except StopAsyncIteration:
                self._live_done = True
            else:
                if self.recorded is not None:
                    self.recorded.append(event)
                yield event
        if not self._live_done:
            async for event in self._live:
                if self.recorded is not None:
                    self.recorded.append(event)
                yield event

    async def _decode(self) -> AsyncIterator[Event]:
        finished = False
        started = False
        try:
            async for chunk in _with_pings(self._response.aiter_bytes(), settings.LYNKR_STREAM_PING_INTERVAL):
                if chunk is None:
                    # The upstream is silent (a model thinking, a server queueing): tell the client we are alive.
                    if started and not finished:
                        yield {"type": "ping"}
                    continue
                for event in self._decoder.feed(chunk):
                    started = True
                    finished = self._observe(event) or finished
                    yield event
            for event in self._decoder.flush():
                finished = self._observe(event) or finished
                yield event
            if not finished:
                self.outcome = "truncated"
                yield _error_event("api_error", "upstream stream ended before message_stop")
        except StreamError as exc:
            self.outcome = "stream_error"
            yield {"type": "error", "error": exc.error}
        except httpx.TimeoutException:
            self.outcome = "timeout"
            yield _error_event("timeout_error", "upstream stopped sending (read timeout)")
        except httpx.HTTPError as exc:
            self.outcome = "upstream_disconnect"
            yield _error_event("api_error", f"upstream connection lost: {type(exc).__name__}")

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
            logger.info(
                "request_id=%s key=%s route=%s provider=%s client_model=%s upstream_model=%s attempts=%d outcome=%s "
                "input_tokens=%s output_tokens=%s duration_ms=%.1f",
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


async def _with_pings(chunks: AsyncIterator[bytes], interval: float) -> AsyncIterator[bytes | None]:
    """The chunks, with a None whenever ``interval`` seconds pass without one."""
    iterator = aiter(chunks)
    pending: asyncio.Future[bytes] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(iterator))
            done, _ = await asyncio.wait({pending}, timeout=interval)
            if not done:
                yield None
                continue
            try:
                chunk = pending.result()
            except StopAsyncIteration:
                pending = None
                return
            pending = None
            yield chunk
    finally:
        if pending is not None and not pending.done():
            pending.cancel()


def _error_event(error_type: str, message: str) -> Event:
    return {"type": "error", "error": {"type": error_type, "message": message}}


async def upstream_open(
    ctx: RequestContext, route: Route, body: dict[str, Any], *, record: bool = False
) -> UpstreamStream:
    """One attempt: send and return the open stream once the upstream answered 2xx, else raise its mapped error."""
    started = time.monotonic()
    adapter: Adapter = adapter_for(route.provider.kind)
    if isinstance(adapter, RoutePreparer):
        route = await adapter.prepare(route)
    upstream = adapter.build_request(route, body, ctx.inbound)
    response = await upstream_send(upstream, provider_name=route.provider.name)
    if response.status_code >= 400:
        error_body = await upstream_read_error_body(response)
        raise adapter.error_from_response(route.provider, response.status_code, response.headers, error_body)
    decoder = adapter.stream_decoder(route, body, ctx.inbound, response.headers.get("content-type", ""))
    stream = UpstreamStream(ctx, route, response, decoder, started, record)
    _close_with_task(stream)
    return stream


def _close_with_task(stream: UpstreamStream) -> None:
    """Close the upstream when the request's task ends, even if the response body was never iterated
    (a client that disconnects between the headers and the first chunk cancels the task before that)."""
    task = asyncio.current_task()
    if task is None:
        return
    loop = asyncio.get_running_loop()
    task.add_done_callback(lambda _: loop.create_task(stream.aclose()) if not loop.is_closed() else None)
