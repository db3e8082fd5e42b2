"""Metrics endpoints: /metrics/prometheus (text exposition), /metrics/observability and /metrics/circuit-breakers
(JSON for humans).

Access: loopback callers are let in (a sidecar or node-local Prometheus); anyone else needs a staff session or
``Authorization: Bearer $LYNKR_METRICS_TOKEN``. Everything else gets a 403 in Anthropic's error shape.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Any

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

from gateway.accounting import usage_buffer
from gateway.breakers import breaker_store
from gateway.errors import PermissionDeniedError, error_response
from gateway.metrics import BREAKER_VALUES, BUFFER_DEPTH, observability_snapshot, record_breaker
from providers.resilience import CLOSED, BreakerState
from providers.snapshot import routing_snapshot_get

logger = logging.getLogger(__name__)

LOOPBACK = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})

View = Callable[[HttpRequest], Coroutine[Any, Any, HttpResponse]]


async def metrics_allowed(request: HttpRequest) -> bool:
    if request.META.get("REMOTE_ADDR", "") in LOOPBACK:
        return True
    token = getattr(settings, "LYNKR_METRICS_TOKEN", "") or ""
    header = request.headers.get("authorization", "")
    if token and header[:7].lower() == "bearer " and hmac.compare_digest(header[7:].strip().encode(), token.encode()):
        return True
    user = await request.auser()
    return bool(user.is_active and user.is_staff)


def protected(view: View) -> View:
    @wraps(view)
    async def guarded(request: HttpRequest) -> HttpResponse:
        if not await metrics_allowed(request):
            error = PermissionDeniedError(
                "metrics are served to loopback, staff sessions, or Authorization: Bearer <LYNKR_METRICS_TOKEN>"
            )
            return error_response(error, getattr(request, "lynkr_request_id", ""))
        response = await view(request)
        response["cache-control"] = "no-store"
        return response

    return guarded


def _json(body: object, status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(body), status=status, content_type="application/json")


async def breaker_states() -> list[dict[str, object]]:
    """Every provider the router knows (closed when it has no breaker state yet), plus any other with state."""
    states = await breaker_store().all()
    names = {p.id: p.name for p in (await routing_snapshot_get()).providers}
    rows = []
    for provider_id in [*names, *(pid for pid in states if pid not in names)]:
        state = states.get(provider_id, BreakerState())
        name = names.get(provider_id, f"provider-{provider_id}")
        rows.append(
            {
                "provider": name,
                "provider_id": provider_id,
                "state": state.state,
                "value": BREAKER_VALUES.get(state.state, 0),
                "failures": state.failures,
            }
        )
    return rows


def _registry() -> CollectorRegistry:
    """The default registry, or in multiprocess mode a fresh one merging every process's files (prometheus_client
    docs, "Multiprocess Mode")."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


@protected
async def prometheus(request: HttpRequest) -> HttpResponse:
    try:
        for row in await breaker_states():
            record_breaker(str(row["provider"]), str(row["state"]) or CLOSED)
    except Exception:  # a Redis hiccup must not take the other metrics down with it
        logger.warning("metrics: circuit breaker states unavailable", exc_info=True)
    BUFFER_DEPTH.set(len(usage_buffer))
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)


@protected
async def observability(request: HttpRequest) -> HttpResponse:
    return _json(observability_snapshot())


@protected
async def circuit_breakers(request: HttpRequest) -> HttpResponse:
    try:
        rows = await breaker_states()
    except Exception as exc:
        logger.warning("metrics: circuit breaker states unavailable", exc_info=True)
        return _json({"providers": [], "error": f"{type(exc).__name__}: {exc}"[:300]}, status=503)
    return _json({"providers": rows})
