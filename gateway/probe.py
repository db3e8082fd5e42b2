"""A real, small request to a provider (admin's "test connection"): one short message, answer folded."""

from __future__ import annotations

import time
from dataclasses import dataclass

from gateway.errors import GatewayError
from gateway.pipeline import messages_fold
from gateway.selectors import KeyInfo
from gateway.upstream import RequestContext, upstream_open
from providers.adapters.base import InboundContext
from providers.routing import ProviderConfig, Route

_PROBE_KEY = KeyInfo(id=0, prefix="admin-probe", user_id=0, username="admin", expires_at=None, revoked=False,
                     user_active=True)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ProbeResult:
    ok: bool
    message: str
    latency_ms: float


async def provider_probe(*, provider: ProviderConfig, model: str) -> ProbeResult:
    started = time.monotonic()
    body = {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "Reply with: ok"}]}
    ctx = RequestContext(request_id="probe", key=_PROBE_KEY, inbound=InboundContext(input_estimate=10))
    route = Route(provider, provider.model_override or model, model)
    try:
        stream = await upstream_open(ctx, route, body)
        message = await messages_fold(stream)
    except GatewayError as exc:
        return ProbeResult(False, f"{exc.status} {exc.error_type}: {exc.message}", (time.monotonic() - started) * 1000)
    text = "".join(b.get("text", "") for b in message.get("content", []) if b.get("type") == "text")
    usage = message.get("usage") or {}
    return ProbeResult(
        True,
        f"answered {text[:60]!r} (stop: {message.get('stop_reason')}, tokens in/out: "
        f"{usage.get('input_tokens')}/{usage.get('output_tokens')})",
        (time.monotonic() - started) * 1000,
    )
