"""The inbound Anthropic API under /v1: thin operations that authenticate, parse, and call the pipeline."""

from __future__ import annotations

import hashlib
import logging
import uuid
from typing import Any, TypeVar

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from ninja import NinjaAPI
from pydantic import BaseModel, ValidationError

from gateway import pipeline
from gateway.auth import request_authenticate
from gateway.errors import (
    ApiError,
    GatewayError,
    InvalidRequestError,
    NotFoundError,
    RequestTooLargeError,
    error_response,
)
from gateway.lifecycle import request_track, settle_soon
from gateway.logcontext import log_context_set
from gateway.metering import Meter
from gateway.request_workspace import request_workspace
from gateway.response_cache import cache_key, cacheable, cacheable_result, replay_events, response_cache
from gateway.shedding import shed_check
from gateway.sse import Accumulator, encode
from gateway.toolloop_response import messages_with_gateway_tools
from gateway.wire import CountTokensRequest, MessagesRequest
from gateway.wire.body import BodyError, body_parse
from gateway.wire.messages import ToolsField, describe_validation_error
from providers.adapters.base import InboundContext
from providers.snapshot import routing_snapshot_get

logger = logging.getLogger(__name__)

api = NinjaAPI(title="Lynkr", urls_namespace="lynkr-v1", docs_url=None, openapi_url=None)


def request_id(request: HttpRequest) -> str:
    return getattr(request, "lynkr_request_id", "")


@api.exception_handler(GatewayError)
def _gateway_error(request: HttpRequest, exc: GatewayError) -> HttpResponse:
    return error_response(exc, request_id(request))


@api.exception_handler(Exception)
def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.exception("request_id=%s unexpected error", request_id(request))
    return error_response(ApiError("internal gateway error"), request_id(request))


def _parse(request: HttpRequest, model: type[BaseModel], scope: int) -> dict[str, Any]:
    """The body, validated; its tools are parsed and validated once per user and distinct bytes (wire/body.py)."""
    raw = request.body
    if len(raw) > settings.LYNKR_MAX_BODY_BYTES:
        raise RequestTooLargeError(f"request body exceeds {settings.LYNKR_MAX_BODY_BYTES} bytes")
    try:
        data = body_parse(raw, scope=scope, tools_validate=_tools_validate)
    except BodyError as exc:
        raise InvalidRequestError(str(exc)) from None
    try:
        model.model_validate({name: value for name, value in data.items() if name != "tools"})
    except ValidationError as exc:
        raise InvalidRequestError(describe_validation_error(exc.errors(include_url=False))) from None
    return data


def _tools_validate(tools: Any) -> None:
    try:
        ToolsField.model_validate({"tools": tools})
    except ValidationError as exc:
        raise InvalidRequestError(describe_validation_error(exc.errors(include_url=False))) from None


# Thinking signatures we mint are keyed by the deployment's secret (see providers/adapters/common/signatures.py).
SIGNING_KEY = hashlib.sha256(b"lynkr-thinking-signature:" + settings.SECRET_KEY.encode()).digest()
# ~4 bytes per token for Claude Code's JSON bodies: an estimate for message_start, never a bill.
BYTES_PER_TOKEN = 4


async def _context(request: HttpRequest) -> pipeline.RequestContext:
    key = await request_authenticate(request.headers)
    log_context_set(key=key.prefix)
    return pipeline.RequestContext(
        request_id=request_id(request),
        key=key,
        inbound=InboundContext(
            anthropic_version=request.headers.get("anthropic-version", ""),
            anthropic_beta=request.headers.get("anthropic-beta", ""),
            request_id=request_id(request),
            input_estimate=len(request.body) // BYTES_PER_TOKEN,
            signing_key=SIGNING_KEY,
        ),
    )


@api.post("/messages")
async def messages(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    shed_check()  # 503 while draining or overloaded, before any work
    request_track()  # graceful shutdown waits for this task (gateway/lifecycle.py)
    ctx = await _context(request)
    body = _parse(request, MessagesRequest, ctx.key.user_id)
    workspace = await request_workspace(ctx.key, request.headers)  # a cached dict hit; None without a workspace
    if workspace is not None and workspace.policy.tool_execution_mode == "server":
        return await messages_with_gateway_tools(ctx, body, request.headers, workspace)  # gateway/toolloop.py
    meter = Meter(ctx, body, request.headers, transcript=workspace is None or workspace.policy.record_transcripts)
    streaming = bool(body.get("stream"))
    try:
        plan = await pipeline.messages_plan(ctx, body, request.headers)
        await meter.admit(plan.routes[0] if plan.routes else None)
        cache, key = _cache_for(body, plan, ctx.key.user_id)
        cached = await cache.get(key) if cache is not None and key else None
        if cached is not None:
            return await _cache_hit(ctx, body, meter, cached, streaming)
        stream = await pipeline.messages_open(ctx, body, request.headers, plan, record=cache is not None and bool(key))
    except GatewayError as exc:
        await meter.finish(error=exc)
        exc.headers.update(meter.response_headers())
        raise
    except BaseException as exc:  # a disconnect (CancelledError) or a bug: still billed, reservations released
        await meter.finish(error=ApiError(f"request ended before an answer: {type(exc).__name__}"))
        raise
    stream.on_close = lambda: meter.finish(stream=stream)  # billed even if the body is never iterated
    if not streaming:
        stream.on_close = None  # this handler finishes the meter itself, with the answer or the error
        try:
            message = await pipeline.messages_fold(stream)
        except GatewayError as exc:
            await meter.finish(stream=stream, error=exc)
            raise
        except BaseException:
            await meter.finish(stream=stream)
            raise
        settle_soon(_settle(meter, stream, message, cache, key))
        response = HttpResponse(orjson.dumps(message), content_type="application/json")
        return _explained(_metered(response, meter), stream)

    async def sse() -> Any:
        stream.on_close = None  # from here this generator's finally bills the request, with the answer
        accumulator = Accumulator()
        try:
            async for batch in stream.batches():
                for event in batch:
                    accumulator.feed_safely(event)
                yield b"".join([encode(event) for event in batch])
        finally:
            await stream.aclose()
            settle_soon(_settle(meter, stream, accumulator.result_or_none(), cache, key))

    streamed = StreamingHttpResponse(sse(), content_type="text/event-stream; charset=utf-8")
    streamed["cache-control"] = "no-cache"
    streamed["x-accel-buffering"] = "no"  # nginx: do not buffer SSE
    return _explained(_metered(streamed, meter), stream)


async def _settle(
    meter: Meter, stream: pipeline.UpstreamStream, message: dict[str, Any] | None, cache: Any, key: str
) -> None:
    """Bill the answer and cache it, in a task of its own once the answer is out (gateway/lifecycle.py): no client
    waits for its billing (~3 % of a request's CPU in a profile), and the client leaving cannot cut it short."""
    await meter.finish(stream=stream, message=message)
    if cache is not None and key and stream.recorded is not None and cacheable_result(stream.recorded):
        await cache.put(key, stream.recorded)


def _cache_for(body: dict[str, Any], plan: Any, user_id: int) -> tuple[Any, str]:
    """The response cache and this request's key, or (None, "") when the request is not cacheable.

    Entries are per user: one user's answer is never served to another (nor can timing reveal what they asked)."""
    cache = response_cache()
    if cache is None or not cacheable(body) or not plan.routes:
        return None, ""
    route = plan.routes[0]
    scoped = {**body, "lynkr_cache_scope": f"user:{user_id}"}
    return cache, cache_key(scoped, provider=route.provider.name, upstream_model=route.upstream_model)


async def _cache_hit(
    ctx: pipeline.RequestContext, body: dict[str, Any], meter: Meter, cached: list[Any], streaming: bool
) -> HttpResponse | StreamingHttpResponse:
    events = replay_events(cached, client_model=str(body["model"]), message_id=f"msg_{uuid.uuid4().hex[:24]}")
    accumulator = Accumulator()
    for event in events:
        accumulator.feed_safely(event)
    message = accumulator.result_or_none()
    await meter.finish(message=message, cache_hit=True)
    response: HttpResponse | StreamingHttpResponse
    if streaming:

        async def replay() -> Any:
            yield b"".join(encode(e) for e in events)

        response = StreamingHttpResponse(replay(), content_type="text/event-stream; charset=utf-8")
    else:
        response = HttpResponse(orjson.dumps(message), content_type="application/json")
    response["x-lynkr-cache"] = "hit"
    response["x-lynkr-route"] = "cache"
    for name, value in meter.response_headers().items():
        response[name] = value
    return response


def _metered(response: _R, meter: Meter) -> _R:
    for name, value in meter.response_headers().items():
        response[name] = value
    return response


def _explained(response: _R, stream: pipeline.UpstreamStream) -> _R:
    """Every routing decision is explainable: which rule chose the route, which provider answered."""
    response["x-lynkr-route"] = stream.rule
    response["x-lynkr-provider"] = stream.route.provider.name
    return response


@api.post("/messages/count_tokens")
async def count_tokens(request: HttpRequest) -> HttpResponse:
    ctx = await _context(request)
    body = _parse(request, CountTokensRequest, ctx.key.user_id)
    count = await pipeline.tokens_count_request(ctx, body)
    return HttpResponse(orjson.dumps({"input_tokens": count}), content_type="application/json")


_R = TypeVar("_R", HttpResponse, StreamingHttpResponse)

_CREATED_AT = "2025-01-01T00:00:00Z"


def _model_entry(model_id: str) -> dict[str, str]:
    return {"type": "model", "id": model_id, "display_name": model_id, "created_at": _CREATED_AT}


@api.get("/models")
async def models(request: HttpRequest) -> HttpResponse:
    """Anthropic's list shape (https://docs.anthropic.com/en/api/models-list) with its cursor parameters."""
    await request_authenticate(request.headers)
    ids = (await routing_snapshot_get()).models()
    after, before = request.GET.get("after_id"), request.GET.get("before_id")
    try:
        limit = max(1, min(1000, int(request.GET.get("limit", "20"))))
    except ValueError:
        raise InvalidRequestError("limit: must be an integer") from None
    if after in ids:
        ids = ids[ids.index(after) + 1 :]
    elif before in ids:
        ids = ids[: ids.index(before)]
        ids = ids[-limit:]
    page = ids[:limit]
    body = {
        "data": [_model_entry(m) for m in page],
        "has_more": len(ids) > len(page),
        "first_id": page[0] if page else None,
        "last_id": page[-1] if page else None,
    }
    return HttpResponse(orjson.dumps(body), content_type="application/json")


@api.get("/models/{model_id}")
async def model_get(request: HttpRequest, model_id: str) -> HttpResponse:
    await request_authenticate(request.headers)
    if model_id not in (await routing_snapshot_get()).models():
        raise NotFoundError(f"model: {model_id}")
    return HttpResponse(orjson.dumps(_model_entry(model_id)), content_type="application/json")


# The workspace tools (workspace/api.py) share this API's authentication, errors and /v1 prefix.
from workspace.api import router as _workspace_router  # noqa: E402

api.add_router("", _workspace_router)
