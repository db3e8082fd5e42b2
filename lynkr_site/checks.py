"""``lynkr check``: configuration, database, Redis, the Celery broker, and each enabled provider."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from providers.adapters.anthropic.wire import messages_url
from providers.envseed import provider_env_specs
from providers.selectors import routing_snapshot_build


def _database() -> str:
    connection.ensure_connection()
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    vendor = connection.vendor
    return (
        f"{vendor}, {len(pending)} migration(s) pending (run `lynkr migrate`)" if pending else f"{vendor}, up to date"
    )


def _redis() -> str:
    if not settings.REDIS_URL:
        return "not configured (in-process cache and counters)"
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3, socket_timeout=3)
    client.ping()
    return "reachable"


def _broker() -> str:
    from lynkr_site.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=3)
    return str(settings.CELERY_BROKER_URL).split("@")[-1]


def _env() -> str:
    specs = provider_env_specs(settings.LYNKR_PROVIDER_ENV)
    return f"{len(specs)} provider(s) described by the environment"


def run_checks(*, reach_providers: bool) -> bool:
    checks: list[tuple[str, Callable[[], str]]] = [
        ("environment", _env),
        ("database", _database),
        ("redis", _redis),
        ("celery broker", _broker),
    ]
    ok = True
    for name, check in checks:
        try:
            print(f"ok    {name}: {check()}")
        except Exception as exc:  # report every failure, keep checking the rest
            ok = False
            print(f"FAIL  {name}: {type(exc).__name__}: {exc}")
    snapshot = routing_snapshot_build()
    if not snapshot.providers:
        print("warn  providers: none enabled (add one in admin or set MODEL_PROVIDER)")
    for provider in snapshot.providers:
        if not reach_providers:
            print(f"skip  provider {provider.name}: not contacted (--offline)")
            continue
        url = messages_url(provider.base_url) if provider.kind == "anthropic" else provider.base_url
        try:
            # Any HTTP answer (even 401/404/405) proves the host is reachable; only transport errors fail.
            response = httpx.get(url, timeout=provider.connect_timeout, trust_env=False)
            print(f"ok    provider {provider.name}: {url} answered HTTP {response.status_code}")
        except httpx.HTTPError as exc:
            ok = False
            print(f"FAIL  provider {provider.name}: {url}: {type(exc).__name__}: {exc}")
    return ok
