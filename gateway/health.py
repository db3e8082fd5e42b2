"""Health probes: /health/live (the process answers) and /health/ready (it can serve: database, Redis when
configured, the Celery broker, the usage buffer flushing, not shutting down). 503 lists the failing checks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import orjson
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse

from gateway.accounting import usage_buffer
from gateway.db import db_async
from gateway.lifecycle import inflight_count, shutting_down
from providers.adapters.http import http_client
from providers.routing import ProviderConfig
from providers.snapshot import routing_snapshot_get

CHECK_TIMEOUT = 3.0


def _json(body: dict[str, object], status: int = 200) -> HttpResponse:
    response = HttpResponse(orjson.dumps(body), status=status, content_type="application/json")
    response["cache-control"] = "no-store"
    return response


async def live(request: HttpRequest) -> HttpResponse:
    return _json({"status": "ok"})


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


async def _redis() -> str:
    if not settings.REDIS_URL:
        return "not configured"
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        await client.ping()
    finally:
        await client.aclose()
    return "ok"


def _broker() -> str:
    from lynkr_site.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return "ok"


async def _buffer() -> str:
    pending = len(usage_buffer)
    age = time.monotonic() - usage_buffer.last_flush
    if pending and age > settings.LYNKR_USAGE_STUCK_AFTER:
        raise RuntimeError(f"{pending} usage records waiting, last successful flush {age:.0f} s ago")
    return f"{pending} waiting"


async def _not_draining() -> str:
    if shutting_down():
        raise RuntimeError("shutting down")
    return f"{inflight_count()} in flight"


_deep_cache: dict[int, tuple[str | None, float]] = {}
DEEP_TTL = 30.0


async def _provider_reachable(provider: ProviderConfig) -> str | None:
    """None when the provider's host answers HTTP at all (any status); else why not. Cached for DEEP_TTL s."""
    cached = _deep_cache.get(provider.id)
    if cached is not None and time.monotonic() - cached[1] < DEEP_TTL:
        return cached[0]
    import httpx  # only for the deep check: a server process that never runs it does not load httpx

    problem: str | None = None
    try:
        await http_client().get(provider.base_url, timeout=httpx.Timeout(2.0))
    except httpx.HTTPError as exc:
        problem = f"{type(exc).__name__}"
    _deep_cache[provider.id] = (problem, time.monotonic())
    return problem


async def _providers() -> str:
    snapshot = await routing_snapshot_get()
    problems = await asyncio.gather(*(_provider_reachable(p) for p in snapshot.providers))
    failing = [f"{p.name}: {why}" for p, why in zip(snapshot.providers, problems, strict=True) if why]
    if failing:
        raise RuntimeError("; ".join(failing))
    return f"{len(snapshot.providers)} reachable"


async def ready(request: HttpRequest) -> HttpResponse:
    checks: dict[str, Callable[[], Awaitable[str]]] = {
        "database": db_async(_database),
        "redis": _redis,
        "broker": db_async(_broker),
        "usage_buffer": _buffer,
        "lifecycle": _not_draining,
    }
    if request.GET.get("deep") in ("1", "true", "yes"):
        checks["providers"] = _providers  # bounded (2 s each, in parallel) and cached
    results: dict[str, object] = {}
    failing: list[str] = []
    for name, check in checks.items():
        try:
            results[name] = await asyncio.wait_for(check(), CHECK_TIMEOUT)
        except Exception as exc:  # every failing check is reported, not only the first
            results[name] = f"failed: {type(exc).__name__}: {exc}"[:300]
            failing.append(name)
    status = 503 if failing else 200
    return _json({"status": "ok" if not failing else "unavailable", "failing": failing, "checks": results}, status)
