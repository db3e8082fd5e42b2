"""Requests to Anthropic-format upstreams (pure).

The body passes through as the client sent it (unknown fields included) with two changes: ``model`` becomes
the upstream model, and ``stream`` is always true, because the non-streaming answer is folded from the same
event stream (DESIGN.md, one request, step 5). The client's key is never forwarded; the provider's is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from gateway.wire.errors import ApiError, GatewayError
from providers.adapters.anthropic.wire import DEFAULT_VERSION, count_tokens_url, messages_url
from providers.adapters.base import InboundContext, UpstreamRequest
from providers.adapters.common.auth import auth_headers, extra_headers
from providers.adapters.errors import error_for_status
from providers.routing import ProviderConfig, Route


def _headers(provider: ProviderConfig, inbound: InboundContext, *, accept: str) -> tuple[tuple[str, str], ...]:
    headers = [
        ("content-type", "application/json"),
        ("accept", accept),
        ("anthropic-version", inbound.anthropic_version or provider.api_version or DEFAULT_VERSION),
    ]
    if inbound.anthropic_beta:
        headers.append(("anthropic-beta", inbound.anthropic_beta))
    headers += auth_headers(provider) + extra_headers(provider)
    if inbound.request_id:
        headers.append(("x-request-id", inbound.request_id))
    return tuple(headers)


def build_request(route: Route, body: dict[str, Any], inbound: InboundContext) -> UpstreamRequest:
    provider = route.provider
    upstream = {**body, "model": route.upstream_model, "stream": True}
    return UpstreamRequest(
        method="POST",
        url=messages_url(provider.base_url),
        headers=_headers(provider, inbound, accept="text/event-stream"),
        body=orjson.dumps(upstream),
        connect_timeout=provider.connect_timeout,
        read_timeout=provider.read_timeout,
    )


def build_count_request(route: Route, body: dict[str, Any], inbound: InboundContext) -> UpstreamRequest:
    provider = route.provider
    return UpstreamRequest(
        method="POST",
        url=count_tokens_url(provider.base_url),
        headers=_headers(provider, inbound, accept="application/json"),
        body=orjson.dumps({**body, "model": route.upstream_model}),
        connect_timeout=provider.connect_timeout,
        read_timeout=provider.read_timeout,
    )


def parse_count_response(body: bytes) -> int:
    try:
        data = orjson.loads(body)
        return int(data["input_tokens"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ApiError(f"upstream count_tokens answer is not {{'input_tokens': N}}: {exc}") from exc


def error_from_response(provider: ProviderConfig, status: int, headers: Mapping[str, str], body: bytes) -> GatewayError:
    """Anthropic errors carry ``{"type":"error","error":{"type","message"}}``; keep the upstream message."""
    message = ""
    try:
        data = orjson.loads(body)
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            message = str(data["error"].get("message") or "")
    except orjson.JSONDecodeError:
        pass
    if not message:
        message = body[:300].decode("utf-8", errors="replace").strip() or f"HTTP {status}"
    return error_for_status(provider.name, status, f"upstream: {message}", headers)
