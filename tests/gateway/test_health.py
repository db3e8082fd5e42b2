"""Health probes and load shedding (in process)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from django.test import AsyncClient

from gateway import lifecycle, shedding
from gateway.accounting import UsageRow, usage_buffer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _not_draining() -> Iterator[None]:
    lifecycle._State.shutting_down = False
    shedding._memory[:] = [0.0, 0.0]
    yield
    lifecycle._State.shutting_down = False
    shedding._memory[:] = [0.0, 0.0]


async def test_live_and_ready() -> None:
    client = AsyncClient()
    assert (await client.get("/health/live")).status_code == 200
    response = await client.get("/health/ready")
    body = orjson.loads(response.content)
    assert response.status_code == 200, body
    assert body["failing"] == [] and body["checks"]["database"] == "ok"
    assert body["checks"]["redis"] == "not configured"


async def test_ready_is_503_while_draining_and_new_requests_are_refused() -> None:
    lifecycle._State.shutting_down = True
    client = AsyncClient()
    response = await client.get("/health/ready")
    assert response.status_code == 503 and "lifecycle" in orjson.loads(response.content)["failing"]
    assert (await client.get("/health/live")).status_code == 200  # the process is alive, just not taking work
    refused = await client.post("/v1/messages", b"{}", content_type="application/json")
    error = orjson.loads(refused.content)
    assert refused.status_code == 503 and error["error"]["type"] == "overloaded_error"
    assert refused.headers["retry-after"] == "5"


async def test_stuck_usage_buffer_fails_readiness(settings: Any) -> None:
    settings.LYNKR_USAGE_STUCK_AFTER = 1.0
    usage_buffer._rows.append(UsageRow("x:request", "request", "x", None, None, None, None))  # type: ignore[arg-type]
    usage_buffer.last_flush -= 10
    try:
        response = await AsyncClient().get("/health/ready")
        assert response.status_code == 503 and orjson.loads(response.content)["failing"] == ["usage_buffer"]
    finally:
        usage_buffer.clear()


async def test_active_request_threshold_sheds(settings: Any) -> None:
    settings.LYNKR_SHED_ACTIVE_REQUESTS = 1
    blocker = asyncio.get_running_loop().create_task(asyncio.sleep(5))
    lifecycle._inflight.add(blocker)  # type: ignore[arg-type]
    try:
        response = await AsyncClient().post("/v1/messages", b"{}", content_type="application/json")
        assert response.status_code == 503
        assert "limit of 1 active requests" in orjson.loads(response.content)["error"]["message"]
        assert (await AsyncClient().get("/health/ready")).status_code == 200  # health stays correct
    finally:
        blocker.cancel()
        lifecycle._inflight.discard(blocker)  # type: ignore[arg-type]


async def test_memory_threshold_sheds(settings: Any) -> None:
    assert 0 < shedding.memory_fraction() < 1  # a real reading from /proc
    settings.LYNKR_SHED_MEMORY_FRACTION = 0.0
    response = await AsyncClient().post("/v1/messages", b"{}", content_type="application/json")
    assert response.status_code == 503 and "low on memory" in orjson.loads(response.content)["error"]["message"]


async def test_deep_readiness_reaches_providers() -> None:
    from asgiref.sync import sync_to_async

    from gateway import health
    from providers.models import Provider
    from tests.mocks.anthropic_upstream import MockAnthropicUpstream
    from tests.services import free_port

    health._deep_cache.clear()
    with MockAnthropicUpstream() as upstream:
        await sync_to_async(Provider.objects.create)(name="up", base_url=upstream.url)
        ok = await AsyncClient().get("/health/ready?deep=true")
        assert ok.status_code == 200 and orjson.loads(ok.content)["checks"]["providers"] == "1 reachable"
    await sync_to_async(Provider.objects.create)(name="gone", base_url=f"http://127.0.0.1:{free_port()}")
    health._deep_cache.clear()
    bad = await AsyncClient().get("/health/ready?deep=1")
    body = orjson.loads(bad.content)
    assert (
        bad.status_code == 503
        and body["failing"] == ["providers"]
        and "gone: ConnectError" in body["checks"]["providers"]
    )
    assert (await AsyncClient().get("/health/ready")).status_code == 200  # shallow readiness does not call providers
