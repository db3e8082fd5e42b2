"""One request: route -> adapter -> upstream -> stream (-> fold for non-streaming).

Failures before the upstream's first byte raise a ``GatewayError`` (an HTTP error answer); after it, the stream
ends with an Anthropic ``error`` event. Policy, admission (budgets, rate limits), retries/fallbacks and
accounting hook in here in later stages.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from asgiref.sync import sync_to_async
from django.conf import settings

from gateway.errors import ERRORS_BY_TYPE, ApiError, InvalidRequestError, NotFoundError
from gateway.selectors import KeyInfo
from gateway.sse import Accumulator, Event, StreamError
from gateway.tokens import tokens_count
from providers.adapters import adapter_for
from providers.adapters.base import Adapter, InboundContext, RoutePreparer, StreamDecoder, TokenCounter
from providers.adapters.http import upstream_read_error_body, upstream_send
from providers.routing import NoRouteError, Route, route_select
from providers.snapshot import routing_snapshot_get

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RequestContext:
    request_id: str
    key: KeyInfo
    inbound: InboundContext


async def _route(client_model: str) -> Route:
    snapshot = await routing_snapshot_get()
    try:
        return route_select(snapshot, client_model=client_model)
    except NoRouteError as exc:
        # 404 reads in Claude Code as "There's an issue with the selected model" (claude-code-wire.md §5).
        raise NotFoundError(str(exc)) from exc


class UpstreamStream:
    """An open upstream answer, decoded into Anthropic events. Iterate ``events()`` once; ``aclose()`` always."""

    def __init__(
        self, ctx: RequestContext, route: Route, response: httpx.Response, decoder: StreamDecoder, started: float
    ) -> None:
        self.ctx = ctx
        self.route = route
        self._response = response
        self._decoder = decoder
        self._started = started
        self._closed = False
        self.usage: dict[str, Any] = {}
        self.outcome = "incomplete"

    async def events(self) -> AsyncIterator[Event]:
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
        try:
            await self._response.aclose()
        finally:
            logger.info(
                "request_id=%s key=%s provider=%s client_model=%s upstream_model=%s outcome=%s "
                "input_tokens=%s output_tokens=%s duration_ms=%.1f",
                self.ctx.request_id,
                self.ctx.key.prefix,
                self.route.provider.name,
                self.route.client_model,
                self.route.upstream_model,
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


async def messages_open(ctx: RequestContext, body: dict[str, Any]) -> UpstreamStream:
    """Route and send; return the open stream once the upstream answered 2xx, else raise its mapped error."""
    started = time.monotonic()
    client_model = str(body["model"])
    route = await _route(client_model)
    adapter: Adapter = adapter_for(route.provider.kind)
    if isinstance(adapter, RoutePreparer):
        route = await adapter.prepare(route)
    upstream = adapter.build_request(route, body, ctx.inbound)
    response = await upstream_send(upstream, provider_name=route.provider.name)
    if response.status_code >= 400:
        error_body = await upstream_read_error_body(response)
        raise adapter.error_from_response(route.provider, response.status_code, response.headers, error_body)
    decoder = adapter.stream_decoder(route, body, ctx.inbound, response.headers.get("content-type", ""))
    stream = UpstreamStream(ctx, route, response, decoder, started)
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


async def messages_fold(stream: UpstreamStream) -> dict[str, Any]:
    """The non-streaming answer: the fold of the event stream."""
    accumulator = Accumulator()
    try:
        async for event in stream.events():
            accumulator.feed(event)
        return accumulator.result()
    except StreamError as exc:
        error_type = str(exc.error.get("type") or "api_error")
        error_class = ERRORS_BY_TYPE.get(error_type, ApiError)
        raise error_class(str(exc.error.get("message") or "upstream error")) from exc
    finally:
        await stream.aclose()


_no_upstream_count: set[int] = set()


async def tokens_count_request(ctx: RequestContext, body: dict[str, Any]) -> int:
    """Forward to the upstream when it counts; otherwise (or after its 404) count locally."""
    route = await _route(str(body["model"]))
    adapter = adapter_for(route.provider.kind)
    if (
        route.provider.supports_count_tokens
        and route.provider.id not in _no_upstream_count
        and isinstance(adapter, TokenCounter)
    ):
        upstream = adapter.build_count_request(route, body, ctx.inbound)
        response = await upstream_send(upstream, provider_name=route.provider.name)
        try:
            if response.status_code < 400:
                return adapter.parse_count_response(await response.aread())
            if response.status_code in (404, 405, 501):
                logger.info("provider %s cannot count tokens; counting locally from now on", route.provider.name)
                _no_upstream_count.add(route.provider.id)
            else:
                error_body = await upstream_read_error_body(response)
                raise adapter.error_from_response(route.provider, response.status_code, response.headers, error_body)
        finally:
            await response.aclose()
    try:
        return await sync_to_async(tokens_count, thread_sensitive=False)(body)
    except (TypeError, AttributeError) as exc:
        raise InvalidRequestError(f"cannot count tokens of this request: {exc}") from exc
