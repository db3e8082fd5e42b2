"""One request: plan the route -> attempts (retry, fallback, breaker) -> stream (-> fold for non-streaming).

The route plan (providers/route_plan.py, pure, on the cached snapshot) gives the targets to try in order. Each
attempt passes the provider's circuit breaker, sends, and reads ahead to the first content event: a failure up to
there (an error status, a connection error, an ``error`` event before content) is retried or failed over, so the
client sees one clean answer. A failure after content has reached the client ends the stream with an ``error``
event; it is never retried (that could duplicate output). Retryable failures go to the next target first (fast
failover); the last target is retried with backoff and full jitter; 4xx client errors are returned at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from gateway.breakers import breaker_store, retry_policy
from gateway.errors import (
    ERRORS_BY_TYPE,
    ApiError,
    GatewayError,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    UpstreamPoolFullError,
)
from gateway.logcontext import log_context_set
from gateway.metrics import record_attempt, record_breaker, record_fallback, record_retry, record_stream_opened
from gateway.sse import Accumulator, StreamError
from gateway.tokens import tokens_count
from gateway.upstream import AttemptInfo, RequestContext, UpstreamStream, upstream_open
from providers.adapters import adapter_for
from providers.adapters.base import TokenCounter
from providers.adapters.http import upstream_read_error_body, upstream_send
from providers.resilience import OPEN, retry_delay
from providers.route_plan import CapabilityError, PromptTooLongError, RequestFacts, RoutePlan, route_plan
from providers.routing import NoRouteError, Route
from providers.snapshot import routing_snapshot_get

logger = logging.getLogger(__name__)

__all__ = ["RequestContext", "UpstreamStream", "messages_fold", "messages_open", "tokens_count_request"]


def request_facts(ctx: RequestContext, body: dict[str, Any], headers: Any) -> RequestFacts:
    thinking = body.get("thinking")
    return RequestFacts(
        client_model=str(body["model"]),
        tool_count=sum(1 for t in body.get("tools") or [] if not t.get("defer_loading")),
        has_images=_has_images(body.get("messages") or []),
        thinking=isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"),
        input_tokens=ctx.inbound.input_estimate,
        headers=headers,
        key_id=ctx.key.id,
        user_id=ctx.key.user_id,
        group_ids=ctx.key.group_ids,
    )


def _has_images(messages: list[Any]) -> bool:
    for message in messages:
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for block in content:
            kind = block.get("type")
            if kind == "image":
                return True
            parts = block.get("content") if kind == "tool_result" else None
            if isinstance(parts, list) and any(isinstance(p, dict) and p.get("type") == "image" for p in parts):
                return True
    return False


async def plan_for(facts: RequestFacts) -> RoutePlan:
    snapshot = await routing_snapshot_get()
    try:
        return route_plan(snapshot, facts)
    except NoRouteError as exc:
        # 404 reads in Claude Code as "There's an issue with the selected model" (claude-code-wire.md §5).
        raise NotFoundError(str(exc)) from exc
    except (CapabilityError, PromptTooLongError) as exc:
        raise InvalidRequestError(str(exc)) from exc


def _error_of(event: dict[str, Any]) -> GatewayError:
    error = event.get("error") or {}
    cls = ERRORS_BY_TYPE.get(str(error.get("type") or "api_error"), ApiError)
    return cls(str(error.get("message") or "upstream error"))


def _retry_after(error: GatewayError) -> float | None:
    value = error.headers.get("retry-after")
    return float(value) if value and value.isdigit() else None


async def messages_plan(ctx: RequestContext, body: dict[str, Any], headers: Any = None) -> RoutePlan:
    return await plan_for(request_facts(ctx, body, headers or {}))


async def messages_open(
    ctx: RequestContext,
    body: dict[str, Any],
    headers: Any = None,
    plan: RoutePlan | None = None,
    *,
    record: bool = False,
) -> UpstreamStream:
    """Plan, then attempt targets until one answers with content; raise the last error if none does."""
    plan = plan or await messages_plan(ctx, body, headers)
    breakers = breaker_store()
    policy = retry_policy()
    # A tier caps its attempts; without one, each target once plus the configured retries on the last.
    cap = plan.max_attempts if plan.tier is not None else len(plan.routes) + policy.max_retries
    attempts = 0
    last: GatewayError | None = None
    for position, route in enumerate(plan.routes):
        is_last = position == len(plan.routes) - 1
        retry = 0
        while attempts < cap:
            state = await breakers.apply(route.provider.id, "check")
            if state.state == OPEN:
                record_fallback(route.provider.name, "circuit_open")
                last = last or OverloadedError(f"provider {route.provider.name!r} is unavailable (circuit open)")
                break
            attempts += 1
            log_context_set(route=plan.rule, provider=route.provider.name, attempt=attempts)
            record_attempt(route.provider.name, state)
            began = time.monotonic()
            try:
                stream = await _attempt(ctx, route, body, record)
            except UpstreamPoolFullError as exc:
                # Our own connection pool is full: the provider is not at fault (its breaker is left alone), and
                # another attempt, here or at the next target, would only wait on the same pool.
                ctx.attempts.append(_attempt_info(route, plan.rule, exc.status, exc.error_type, began))
                logger.warning("request_id=%s provider=%s: %s", ctx.request_id, route.provider.name, exc.message)
                raise
            except GatewayError as exc:
                ctx.attempts.append(_attempt_info(route, plan.rule, exc.status, exc.error_type, began))
                last = exc
                if not exc.retryable and exc.status < 500:
                    raise  # the request itself is at fault: another target would refuse it too
                record_breaker(route.provider.name, await breakers.apply(route.provider.id, "failure"))
                logger.warning(
                    "request_id=%s attempt=%d provider=%s failed: %s %s",
                    ctx.request_id, attempts, route.provider.name, exc.status, exc.message,
                )  # fmt: skip
                if not is_last or not exc.retryable:
                    record_fallback(route.provider.name, str(exc.status))
                    break
                delay = retry_delay(policy, retry, retry_after=_retry_after(exc))
                if delay is None or attempts >= cap:
                    break
                record_retry(route.provider.name, route.upstream_model)
                retry += 1
                await asyncio.sleep(delay)
                continue
            record_breaker(route.provider.name, await breakers.apply(route.provider.id, "success"))
            record_stream_opened()
            ctx.attempts.append(_attempt_info(route, plan.rule, 200, "", began))
            stream.rule = plan.rule
            stream.attempts = attempts
            return stream
    raise last or ApiError("no upstream attempt was possible")


def _attempt_info(route: Route, rule: str, status: int, error_type: str, began: float) -> AttemptInfo:
    latency = int((time.monotonic() - began) * 1000)
    return AttemptInfo(route.provider.name, route.upstream_model, rule, status, error_type, latency)


async def _attempt(ctx: RequestContext, route: Route, body: dict[str, Any], record: bool) -> UpstreamStream:
    stream = await upstream_open(ctx, route, body, record=record)
    error = await stream.prefetch(settings.LYNKR_FIRST_TOKEN_TIMEOUT)
    if error is not None:
        await stream.aclose()
        raise _error_of(error)
    return stream


async def messages_fold(stream: UpstreamStream) -> dict[str, Any]:
    """The non-streaming answer: the fold of the event stream."""
    accumulator = Accumulator()
    try:
        async for batch in stream.batches():
            for event in batch:
                accumulator.feed(event)
        return accumulator.result()
    except StreamError as exc:
        raise _error_of({"error": exc.error}) from exc
    finally:
        await stream.aclose()


_no_upstream_count: set[int] = set()


async def tokens_count_request(ctx: RequestContext, body: dict[str, Any]) -> int:
    """Forward to the upstream when it counts; otherwise (or after its 404) count locally."""
    plan = await plan_for(RequestFacts(client_model=str(body["model"]), key_id=ctx.key.id, user_id=ctx.key.user_id))
    route = plan.routes[0]
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
