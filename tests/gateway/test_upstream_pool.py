"""A full upstream connection pool (LYNKR_UPSTREAM_MAX_CONNECTIONS) through the whole /v1/messages path.

It is the gateway's own overload, not the provider's failure: the client gets a retryable 529 ``overloaded_error``,
the provider's breaker is left alone, and nothing is retried or failed over (that would only wait on the same pool).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import AsyncClient

from gateway.breakers import breaker_store
from gateway.services import apikey_create
from providers.models import Provider, RouteTier, RoutingRule, TierTarget
from providers.resilience import CLOSED
from tests.mocks.anthropic_upstream import MockAnthropicUpstream, ScriptedResponse, stream_events

pytestmark = pytest.mark.django_db(transaction=True)

OK = {"model": "claude-sonnet-5", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(autouse=True)
def _one_connection(settings: Any) -> Iterator[None]:
    settings.LYNKR_UPSTREAM_MAX_CONNECTIONS = 1  # read when the test's loop makes its pool
    settings.REDIS_URL = ""  # the in-memory breaker store
    breaker_store.cache_clear()
    yield
    breaker_store.cache_clear()


@pytest.fixture
def key() -> str:
    user = User.objects.create_user(username="pool-user", password="x" * 12)
    return apikey_create(user=user).secret


@sync_to_async
def chain(urls: dict[str, str]) -> list[Provider]:
    """A tier with these providers in order (a short connect timeout: the wait for the pool), for every request."""
    providers = [
        Provider.objects.create(name=name, kind="anthropic", base_url=url, api_key="k", connect_timeout=0.3)
        for name, url in urls.items()
    ]
    tier = RouteTier.objects.create(name="main", max_attempts=4)
    for order, row in enumerate(providers):
        TierTarget.objects.create(tier=tier, provider=row, order=order)
    RoutingRule.objects.create(name="everything", order=1, tier=tier)
    return providers


async def post(key: str, body: dict[str, Any]) -> Any:
    return await AsyncClient().post(
        "/v1/messages?beta=true", orjson.dumps(body), content_type="application/json", headers={"x-api-key": key}
    )


async def test_a_full_pool_is_a_retryable_529_that_trips_no_breaker(
    key: str, upstream: MockAnthropicUpstream, second_upstream: MockAnthropicUpstream
) -> None:
    first, second = await chain({"first": upstream.url, "second": second_upstream.url})
    events = stream_events("u", [{"type": "text", "text": "held"}], "end_turn", 3)
    upstream.enqueue(ScriptedResponse(events=events, hang_after=2))  # message_start, content_block_start, then holds
    holding, leave = asyncio.Event(), asyncio.Event()

    async def client_holding_a_stream() -> None:
        held = await post(key, {**OK, "stream": True})
        assert held.status_code == 200 and held.headers["x-lynkr-provider"] == "first"
        assert (await anext(aiter(held.streaming_content))).startswith(b"event: message_start\n")
        holding.set()  # the one connection is in use
        await leave.wait()  # then the client leaves: its request's task ends, which closes the upstream stream

    client = asyncio.create_task(client_holding_a_stream())
    await holding.wait()

    for _ in range(6):  # more than the breaker's failure threshold (5)
        response = await post(key, OK)
        assert response.status_code == 529
        error = orjson.loads(response.content)["error"]
        assert error["type"] == "overloaded_error"
        assert "connection pool is full" in error["message"] and "LYNKR_UPSTREAM_MAX_CONNECTIONS" in error["message"]
        assert response.get("x-should-retry") != "false"  # the client may retry it
        assert response["retry-after"] == "1"

    assert len(upstream.messages_requests) == 1  # none of them was sent, nor retried
    assert second_upstream.messages_requests == []  # nor failed over: the second target uses the same pool
    for row in (first, second):
        state = await breaker_store().apply(row.id, "check")
        assert state.state == CLOSED and state.failures == 0

    leave.set()
    await client
    response = await post(key, OK)  # the held stream gave its connection back
    assert response.status_code == 200 and response.headers["x-lynkr-provider"] == "first"
