from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.mocks.anthropic_upstream import MockAnthropicUpstream  # noqa: E402


@pytest.fixture
def upstream() -> Iterator[MockAnthropicUpstream]:
    with MockAnthropicUpstream() as mock:
        yield mock
        assert mock.errors == [], mock.errors


@pytest.fixture
def second_upstream() -> Iterator[MockAnthropicUpstream]:
    """Another provider's server, for failover and per-provider tests."""
    with MockAnthropicUpstream() as mock:
        yield mock
        assert mock.errors == [], mock.errors


@pytest.fixture(autouse=True)
def _clear_process_caches() -> Iterator[None]:
    """Per-process caches (keys, routing) must not leak between tests."""
    from gateway import pipeline
    from gateway.auth import key_cache_clear
    from gateway.breakers import breaker_store
    from gateway.budgets import budget_cache_clear
    from gateway.metering_config import metering_cache_clear
    from gateway.ratelimit import rate_limiter
    from gateway.request_workspace import request_workspace_cache_clear
    from gateway.response_cache import response_cache
    from providers.snapshot import routing_snapshot_invalidate

    key_cache_clear()
    request_workspace_cache_clear()
    routing_snapshot_invalidate()
    pipeline._no_upstream_count.clear()
    for cached in (breaker_store, rate_limiter, response_cache):
        cached.cache_clear()
    budget_cache_clear()
    metering_cache_clear()
    from gateway.budgets import _redis_ledger

    _redis_ledger.cache_clear()
    from gateway.accounting import usage_buffer

    usage_buffer.clear()  # rows of an earlier test point at rows its database no longer has
    yield
    # sync_to_async runs ORM calls on asgiref's shared executor thread; close that thread's connection so the
    # PostgreSQL test database can be dropped at the end (it refuses while a session is open).
    from asgiref.sync import SyncToAsync
    from django.db import connections

    SyncToAsync.single_thread_executor.submit(connections.close_all).result()
