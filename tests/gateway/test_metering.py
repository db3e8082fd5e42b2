"""Metering through /v1/messages: usage records per request and per attempt, rate limits, sessions and transcripts,
and the response cache (in-process, Django's async client, loopback mock upstreams)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import AsyncClient

from gateway.accounting import usage_buffer
from gateway.metering import usage_flush
from gateway.models import ApiKey, PriceEntry, RateLimit, Session, Turn, UsageRecord
from gateway.response_cache import response_cache
from gateway.services import apikey_create
from providers.models import Provider, RouteTier, RoutingRule, TierTarget
from tests.mocks.anthropic_upstream import MockAnthropicUpstream, ScriptedResponse, error_response

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = {"model": "claude-sonnet-5", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
SLOW = {**HELLO, "stream": True, "messages": [{"role": "user", "content": "__slow"}]}


def _discard_buffered_rows() -> None:
    usage_buffer.clear()


@pytest.fixture(autouse=True)
def _metering(settings: Any) -> Iterator[None]:
    """Memory stores (no Redis), usage written only by explicit flushes, no rows left by other tests (their users
    are gone), and no prices but the ones a test creates (seeded rows come and go with transactional flushes)."""
    settings.REDIS_URL = ""
    settings.LYNKR_USAGE_FLUSH_INTERVAL = 3600
    settings.LYNKR_RETRY_INITIAL_DELAY = 0.01
    _discard_buffered_rows()
    PriceEntry.objects.all().delete()
    yield
    _discard_buffered_rows()


@pytest.fixture
def user() -> User:
    return User.objects.create_user(username="meter-user", password="x" * 12)


@pytest.fixture
def key(user: User) -> str:
    return apikey_create(user=user).secret


@pytest.fixture
def provider(upstream: MockAnthropicUpstream) -> Provider:
    return Provider.objects.create(
        name="up", kind="anthropic", base_url=upstream.url, api_key="k", model_override="upstream-model"
    )


async def post(key: str, body: Any, **headers: str) -> Any:
    return await AsyncClient().post(
        "/v1/messages?beta=true",
        orjson.dumps(body),
        content_type="application/json",
        headers={"x-api-key": key, **headers},
    )


async def drain(response: Any) -> bytes:
    return b"".join([chunk async for chunk in response.streaming_content])


async def read_one_chunk_then_disconnect(response: Any) -> None:
    """What ASGI does when the client goes away: cancel the task sending the body."""
    started = asyncio.Event()

    async def client() -> None:
        async for _ in response.streaming_content:
            started.set()

    reader = asyncio.create_task(client())
    await asyncio.wait_for(started.wait(), 10)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader


@sync_to_async
def records(kind: str | None = None) -> list[UsageRecord]:
    rows = UsageRecord.objects.order_by("record_id")
    return list(rows.filter(kind=kind) if kind else rows)


@sync_to_async
def price(pattern: str, **fields: Any) -> PriceEntry:
    return PriceEntry.objects.create(model_pattern=pattern, **fields)


@sync_to_async
def key_row(user: User) -> ApiKey:
    return ApiKey.objects.get(user=user)


@sync_to_async
def count(model: Any, **filters: Any) -> int:
    return int(model.objects.filter(**filters).count())


def error_of(response: Any) -> dict[str, Any]:
    body = orjson.loads(response.content)
    assert body["type"] == "error"
    return dict(body["error"])


# --- usage records ----------------------------------------------------------------------------------------------------


async def test_json_request_gives_one_request_record_and_one_attempt_record(
    key: str, user: User, provider: Provider
) -> None:
    response = await post(key, HELLO)
    assert response.status_code == 200
    usage = orjson.loads(response.content)["usage"]
    # Written behind the request: nothing in the database until the buffer is flushed.
    assert await count(UsageRecord) == 0
    assert len(usage_buffer) == 2
    await usage_flush()
    request, attempt = await records("request"), await records("attempt")
    assert len(request) == 1 and len(attempt) == 1
    row = request[0]
    request_id = response.headers["request-id"]
    assert (row.record_id, row.request_id) == (f"{request_id}:request", request_id)
    assert row.api_key_id == (await key_row(user)).pk and row.user_id == user.pk and row.session_id is None
    assert (row.provider, row.upstream_model, row.client_model) == ("up", "upstream-model", "claude-sonnet-5")
    assert row.route_rule == response.headers["x-lynkr-route"] == "default"
    assert (row.input_tokens, row.output_tokens) == (usage["input_tokens"], usage["output_tokens"])
    assert row.input_tokens > 0 and row.output_tokens > 0
    assert (row.cache_read_tokens, row.cache_write_tokens) == (0, 0)
    assert row.cost_usd is None  # no price for upstream-model: unknown, not $0
    assert row.status == 200 and row.error_type == "" and row.cache_hit is False and row.stream is False
    assert row.ttft_ms is not None and 0 <= row.ttft_ms <= row.latency_ms
    one = attempt[0]
    assert (one.record_id, one.request_id) == (f"{request_id}:attempt:1", request_id)
    assert (one.provider, one.upstream_model, one.status, one.error_type) == ("up", "upstream-model", 200, "")
    assert (one.input_tokens, one.output_tokens) == (row.input_tokens, row.output_tokens)


async def test_streaming_request_is_recorded_with_time_to_first_token(key: str, provider: Provider) -> None:
    response = await post(key, {**HELLO, "stream": True})
    raw = await drain(response)
    assert b"event: message_stop" in raw
    assert await count(UsageRecord) == 0
    await usage_flush()
    (row,) = await records("request")
    assert row.stream is True and row.status == 200 and row.ttft_ms is not None
    assert row.input_tokens > 0 and row.output_tokens > 0
    assert len(await records("attempt")) == 1


async def test_cost_from_the_price_table_with_cache_read_and_write_rates(
    key: str, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    await price(
        "upstream-*",
        input_per_mtok=Decimal(3),
        output_per_mtok=Decimal(15),
        cache_read_per_mtok=Decimal("0.3"),
        cache_write_per_mtok=Decimal("3.75"),
    )
    usage = {
        "input_tokens": 1000,
        "output_tokens": 200,
        "cache_read_input_tokens": 50_000,
        "cache_creation_input_tokens": 4000,
    }
    message = {
        "id": "m",
        "type": "message",
        "role": "assistant",
        "model": "u",
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "content": [{"type": "text", "text": "ok"}],
        "usage": usage,
    }
    upstream.enqueue(ScriptedResponse(body=message))
    assert (await post(key, HELLO)).status_code == 200
    await usage_flush()
    (row,) = await records("request")
    assert (row.input_tokens, row.output_tokens, row.cache_read_tokens, row.cache_write_tokens) == (
        1000,
        200,
        50_000,
        4000,
    )
    # 1000 * 3 + 200 * 15 + 50000 * 0.3 + 4000 * 3.75 = 3000 + 3000 + 15000 + 15000 micro-dollars
    assert row.cost_usd == Decimal("0.036")
    (attempt,) = await records("attempt")
    assert attempt.cost_usd == Decimal("0.036") and attempt.cache_read_tokens == 50_000


async def test_provider_specific_price_wins(key: str, provider: Provider) -> None:
    await price("upstream-model", input_per_mtok=Decimal(1), output_per_mtok=Decimal(1), priority=1)
    await price(
        "upstream-*", input_per_mtok=Decimal(1000), output_per_mtok=Decimal(1000), priority=500, provider=provider
    )
    assert (await post(key, HELLO)).status_code == 200
    await usage_flush()
    (row,) = await records("request")
    assert row.cost_usd == Decimal(row.input_tokens + row.output_tokens) * 1000 / 1_000_000


async def test_a_price_for_the_client_model_does_not_price_another_upstream_model(key: str, provider: Provider) -> None:
    await price("claude-sonnet-*", input_per_mtok=Decimal(3), output_per_mtok=Decimal(15))
    response = await post(key, HELLO)  # routed to upstream-model, which has no price
    assert response.status_code == 200  # an unknown price never blocks
    await usage_flush()
    (row,) = await records("request")
    assert row.cost_usd is None and row.input_tokens > 0


@pytest.mark.parametrize("retries", [0, 1])
async def test_upstream_5xx_after_retries_is_recorded(
    retries: int, key: str, provider: Provider, upstream: MockAnthropicUpstream, settings: Any
) -> None:
    settings.LYNKR_RETRY_MAX_RETRIES = retries
    for _ in range(retries + 1):
        upstream.enqueue(error_response(500, "api_error"))
    response = await post(key, HELLO)
    assert response.status_code == 500
    await usage_flush()
    (row,) = await records("request")
    assert (row.status, row.error_type) == (500, "api_error")
    assert (row.input_tokens, row.output_tokens) == (0, 0)
    assert row.cost_usd == 0  # no upstream answered: nothing was billed to us
    assert row.client_model == "claude-sonnet-5"
    attempts = await records("attempt")
    assert [(a.record_id.rsplit(":", 1)[1], a.status, a.error_type) for a in attempts] == [
        (str(n), 500, "api_error") for n in range(1, retries + 2)
    ]
    assert all(a.provider == "up" and a.upstream_model == "upstream-model" for a in attempts)
    assert len(upstream.messages_requests) == retries + 1


async def test_failover_gives_one_request_record_and_one_record_per_attempt(
    key: str, upstream: MockAnthropicUpstream, settings: Any
) -> None:
    settings.LYNKR_RETRY_MAX_RETRIES = 0
    with MockAnthropicUpstream() as second:

        def chain() -> None:
            first_row = Provider.objects.create(name="first", kind="anthropic", base_url=upstream.url, api_key="k")
            second_row = Provider.objects.create(name="second", kind="anthropic", base_url=second.url, api_key="k")
            tier = RouteTier.objects.create(name="main", max_attempts=3)
            TierTarget.objects.create(tier=tier, provider=first_row, order=0, upstream_model="model-a")
            TierTarget.objects.create(tier=tier, provider=second_row, order=1, upstream_model="model-b")
            RoutingRule.objects.create(name="everything", order=1, tier=tier)

        await sync_to_async(chain)()
        upstream.enqueue(error_response(503, "api_error"))
        response = await post(key, {**HELLO, "stream": True})
        await drain(response)
        assert response.status_code == 200 and response.headers["x-lynkr-provider"] == "second"
    await usage_flush()
    (request,) = await records("request")
    assert (request.provider, request.upstream_model, request.route_rule) == ("second", "model-b", "everything")
    assert request.status == 200 and request.output_tokens > 0
    first, second_attempt = await records("attempt")
    assert (first.provider, first.upstream_model, first.status, first.error_type) == (
        "first",
        "model-a",
        500,
        "api_error",
    )
    assert (first.input_tokens, first.output_tokens) == (0, 0)  # a failed attempt carries no usage
    assert (second_attempt.provider, second_attempt.upstream_model, second_attempt.status) == ("second", "model-b", 200)
    assert second_attempt.output_tokens == request.output_tokens
    assert {first.request_id, second_attempt.request_id} == {request.request_id}


async def test_client_disconnect_mid_stream_is_billed(
    key: str, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    response = await post(key, SLOW)
    assert response.status_code == 200
    await read_one_chunk_then_disconnect(response)
    assert await asyncio.to_thread(upstream.wait_for_disconnect, 5)  # the upstream call was cut too
    await usage_flush()
    (row,) = await records("request")
    assert row.status != 200 and row.error_type  # not a success: the answer never completed
    assert row.stream is True and row.input_tokens > 0  # what the upstream reported before the cut is billed
    assert len(await records("attempt")) == 1


@pytest.fixture
def billing_held(monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Every request's billing (``Meter._finish``) waits until the returned event is set."""
    from gateway.metering import Meter

    release = asyncio.Event()
    real_finish = Meter._finish

    async def held_finish(self: Meter, *args: Any) -> None:
        await release.wait()
        await real_finish(self, *args)

    monkeypatch.setattr(Meter, "_finish", held_finish)
    return release


@pytest.mark.parametrize("stream", [False, True])
async def test_the_answer_does_not_wait_for_its_billing(
    stream: bool, key: str, provider: Provider, billing_held: asyncio.Event
) -> None:
    """Billing runs after the answer, in a task of its own (gateway/lifecycle.py settle_soon); a flush waits for it."""
    async with asyncio.timeout(5):  # in this task: the request's task ending would close its stream early
        response = await post(key, {**HELLO, "stream": stream})
        assert response.status_code == 200
        if stream:
            assert (await drain(response)).rstrip().endswith(b'data: {"type":"message_stop"}')
        else:
            assert orjson.loads(response.content)["type"] == "message"
    await asyncio.sleep(0.05)
    assert len(usage_buffer) == 0  # the answer is out; its billing is still waiting
    flush = asyncio.create_task(usage_flush())
    await asyncio.sleep(0.05)
    assert not flush.done()  # a flush writes what is still being billed too
    billing_held.set()
    assert await asyncio.wait_for(flush, 5) == 2
    (row,) = await records("request")
    assert row.status == 200 and row.stream is stream and row.output_tokens > 0


async def test_billing_goes_on_when_the_server_ends_the_request_after_its_answer(
    key: str, provider: Provider, billing_held: asyncio.Event
) -> None:
    """Daphne and uvicorn report ``http.disconnect`` once the answer is sent, and the handler then cancels the
    request's task (gateway/asgi_api.py): billing, in its own task, still completes."""
    from lynkr_site.asgi import application

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/v1/messages", "raw_path": b"/v1/messages", "query_string": b"", "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"), (b"x-api-key", key.encode())],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
    }  # fmt: skip
    answered = asyncio.Event()
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": orjson.dumps(HELLO), "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            answered.set()

    await asyncio.wait_for(application(scope, receive, send), 5)
    assert sent[0]["status"] == 200
    assert orjson.loads(b"".join(m.get("body", b"") for m in sent[1:]))["type"] == "message"
    await asyncio.sleep(0.05)
    assert len(usage_buffer) == 0  # answered, the request's task is over, and the billing is still waiting
    billing_held.set()
    assert await usage_flush() == 2
    (row,) = await records("request")
    assert row.status == 200 and row.output_tokens > 0


@pytest.mark.parametrize("upstream_state", ["no-content-yet", "no-status-yet"])
async def test_client_disconnect_before_the_first_token_is_billed(
    upstream_state: str, key: str, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    from tests.mocks.anthropic_upstream import stream_events

    if upstream_state == "no-content-yet":
        events = stream_events("u", [{"type": "text", "text": "x"}], "end_turn", 5)
        upstream.enqueue(ScriptedResponse(events=events, hang_after=1))
    else:
        upstream.enqueue(ScriptedResponse(hang_after=0))
    task = asyncio.create_task(post(key, {**HELLO, "stream": True}))
    for _ in range(500):
        if upstream.messages_requests:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    task.cancel()  # the client went away while the gateway waited for the upstream
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(upstream.wait_for_disconnect, 5)
    await asyncio.sleep(0.05)
    await usage_flush()
    (row,) = await records("request")
    assert row.status != 200


async def test_error_event_after_content_is_recorded_as_a_failure(
    key: str, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    from tests.mocks.anthropic_upstream import stream_events

    events = stream_events("u", [{"type": "text", "text": "partial answer"}], "end_turn", 5)[:3]
    events.append(("error", {"type": "error", "error": {"type": "overloaded_error", "message": "gone"}}))
    upstream.enqueue(ScriptedResponse(events=events))
    response = await post(key, {**HELLO, "stream": True})
    assert b"event: error" in await drain(response)
    await usage_flush()
    (row,) = await records("request")
    assert row.status != 200 and row.error_type != ""


async def test_json_request_failing_after_content_records_the_status_the_client_got(
    key: str, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    from tests.mocks.anthropic_upstream import stream_events

    events = stream_events("u", [{"type": "text", "text": "partial answer"}], "end_turn", 5)[:3]
    events.append(("error", {"type": "error", "error": {"type": "overloaded_error", "message": "gone"}}))
    upstream.enqueue(ScriptedResponse(events=events))
    response = await post(key, HELLO)
    assert response.status_code == 529 and error_of(response)["type"] == "overloaded_error"
    await usage_flush()
    (row,) = await records("request")
    assert (row.status, row.error_type) == (529, "overloaded_error")


async def test_usage_is_not_written_on_the_request_path(
    key: str, provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway import accounting

    writes: list[int] = []
    real_write = accounting.usage_write

    def spy(*, rows: list[Any], turns: list[Any]) -> None:
        writes.append(len(rows))
        real_write(rows=rows, turns=turns)

    monkeypatch.setattr(accounting, "usage_write", spy)
    for body in (HELLO, {**HELLO, "stream": True}):
        response = await post(key, body, **{"x-claude-code-session-id": "s-1"})
        if body.get("stream"):
            await drain(response)
    assert writes == []
    assert await count(UsageRecord) == 0 and await count(Session) == 0 and await count(Turn) == 0
    assert await usage_flush() == 4
    assert writes == [4]  # one batch
    assert await usage_flush() == 0  # flushing again writes nothing and duplicates nothing
    assert await count(UsageRecord) == 4 and await count(Turn) == 2
    assert writes == [4]


async def _flushed(total: int) -> None:
    """Wait (up to 2 s) until the buffer has written ``total`` rows in all. Its own counter, not the table, is
    polled: on the shared-cache in-memory SQLite test database a read in flight makes the flush's insert fail (or the
    read itself) with "database table is locked"."""
    for _ in range(100):
        if usage_buffer.flushed >= total:
            return
        await asyncio.sleep(0.02)


async def test_a_full_batch_is_flushed_without_waiting_for_the_interval(
    key: str, provider: Provider, settings: Any
) -> None:
    settings.LYNKR_USAGE_FLUSH_BATCH = 2
    written = usage_buffer.flushed
    assert (await post(key, HELLO)).status_code == 200
    await _flushed(written + 2)
    assert await count(UsageRecord) == 2


async def test_the_interval_flusher_writes_in_the_background(key: str, provider: Provider, settings: Any) -> None:
    settings.LYNKR_USAGE_FLUSH_INTERVAL = 0.05
    written = usage_buffer.flushed
    assert (await post(key, HELLO)).status_code == 200
    await _flushed(written + 2)
    assert await count(UsageRecord) == 2
    assert len(usage_buffer) == 0


async def test_same_caller_request_id_twice_is_still_two_records(key: str, provider: Provider) -> None:
    """A caller's X-Request-ID is echoed, never used as the record's id: retries and trace ids repeat it."""
    for _ in range(2):
        response = await post(key, HELLO, **{"x-request-id": "trace-123"})
        assert response.status_code == 200 and response.headers["x-request-id"] == "trace-123"
    await usage_flush()
    assert await count(UsageRecord, kind="request") == 2


# --- rate limits ------------------------------------------------------------------------------------------------------


async def test_key_requests_per_minute(
    key: str, user: User, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    await sync_to_async(RateLimit.objects.create)(api_key=await key_row(user), requests_per_minute=2)
    first, second = await post(key, HELLO), await post(key, {**HELLO, "stream": True})
    await drain(second)
    for response, remaining in ((first, "1"), (second, "0")):
        assert response.status_code == 200
        assert response.headers["anthropic-ratelimit-requests-limit"] == "2"
        assert response.headers["anthropic-ratelimit-requests-remaining"] == remaining
        assert response.headers["anthropic-ratelimit-requests-reset"].endswith("Z")
    third = await post(key, HELLO)
    assert third.status_code == 429
    error = error_of(third)
    assert error["type"] == "rate_limit_error" and "requests per minute" in error["message"]
    assert 1 <= int(third.headers["retry-after"]) <= 30  # 2 per minute: one request back every 30 s
    assert third.headers["anthropic-ratelimit-requests-limit"] == "2"
    assert third.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert "x-should-retry" not in third.headers  # a rate limit passes: the client may retry after the wait
    assert len(upstream.messages_requests) == 2


async def test_no_rate_limit_headers_without_limits(key: str, provider: Provider) -> None:
    response = await post(key, HELLO)
    assert not [name for name in response.headers if name.lower().startswith("anthropic-ratelimit-")]


async def test_user_limits_apply_across_the_users_keys(user: User, provider: Provider) -> None:
    await sync_to_async(RateLimit.objects.create)(user=user, requests_per_minute=2)
    laptop = (await sync_to_async(apikey_create)(user=user)).secret
    desktop = (await sync_to_async(apikey_create)(user=user)).secret
    other = await sync_to_async(User.objects.create_user)(username="someone-else", password="x" * 12)
    others_key = (await sync_to_async(apikey_create)(user=other)).secret
    assert (await post(laptop, HELLO)).status_code == 200
    assert (await post(desktop, HELLO)).status_code == 200
    refused = await post(laptop, HELLO)
    assert refused.status_code == 429 and "retry-after" in refused.headers
    assert (await post(desktop, HELLO)).status_code == 429
    assert (await post(others_key, HELLO)).status_code == 200  # another user's bucket is untouched


async def test_tightest_of_key_and_user_limits_is_reported(user: User, key: str, provider: Provider) -> None:
    await sync_to_async(RateLimit.objects.create)(user=user, requests_per_minute=10)
    await sync_to_async(RateLimit.objects.create)(api_key=await key_row(user), requests_per_minute=3)
    response = await post(key, HELLO)
    assert response.headers["anthropic-ratelimit-requests-limit"] == "3"
    assert response.headers["anthropic-ratelimit-requests-remaining"] == "2"


async def test_input_tokens_per_minute(key: str, user: User, provider: Provider) -> None:
    estimate = len(orjson.dumps(HELLO)) // 4
    await sync_to_async(RateLimit.objects.create)(api_key=await key_row(user), input_tokens_per_minute=estimate + 5)
    ok = await post(key, HELLO)
    assert ok.status_code == 200 and ok.headers["anthropic-ratelimit-input-tokens-limit"] == str(estimate + 5)
    refused = await post(key, HELLO)
    assert refused.status_code == 429 and "input_tokens" in error_of(refused)["message"]


# --- sessions and transcripts -----------------------------------------------------------------------------------------


@sync_to_async
def sessions() -> list[Session]:
    return list(Session.objects.order_by("id"))


@sync_to_async
def turns() -> list[Turn]:
    return list(Turn.objects.order_by("created_at", "id"))


async def test_session_header_creates_a_session_owned_by_the_keys_user(
    key: str, user: User, provider: Provider
) -> None:
    response = await post(key, HELLO, **{"x-claude-code-session-id": "cc-session-1"})
    assert response.status_code == 200
    await usage_flush()
    (session,) = await sessions()
    assert session.external_id == "cc-session-1" and session.user_id == user.pk
    assert session.api_key_id == (await key_row(user)).pk
    assert session.requests == 1
    (row,) = await records("request")
    assert row.session_id == session.pk
    assert all(a.session_id == session.pk for a in await records("attempt"))


async def test_a_second_turn_stores_only_the_new_messages(key: str, provider: Provider) -> None:
    header = {"x-claude-code-session-id": "cc-session-2"}
    first_messages = [{"role": "user", "content": "hi"}]
    await post(key, {**HELLO, "messages": first_messages}, **header)
    await usage_flush()
    history = [
        *first_messages,
        {"role": "assistant", "content": [{"type": "text", "text": "Hello from mock"}]},
        {"role": "user", "content": "and now?"},
    ]
    await post(key, {**HELLO, "messages": history}, **header)
    await usage_flush()
    first, second = await turns()
    assert first.new_messages == first_messages and first.message_count == 1
    assert second.new_messages == history[1:] and second.message_count == 3
    assert first.session_id == second.session_id
    (session,) = await sessions()
    assert session.requests == 2


async def test_turns_in_one_batch_are_also_deduplicated(key: str, provider: Provider) -> None:
    header = {"x-claude-code-session-id": "cc-batch"}
    one = [{"role": "user", "content": "a"}]
    two = [*one, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]
    await post(key, {**HELLO, "messages": one}, **header)
    await post(key, {**HELLO, "messages": two}, **header)
    await usage_flush()  # both turns in the same flush
    first, second = await turns()
    assert first.new_messages == one and second.new_messages == two[1:]


async def test_after_a_compaction_the_whole_shorter_history_is_stored(key: str, provider: Provider) -> None:
    header = {"x-claude-code-session-id": "cc-compact"}
    long = [
        {"role": "user", "content": f"m{i}"} if i % 2 == 0 else {"role": "assistant", "content": f"a{i}"}
        for i in range(5)
    ]
    await post(key, {**HELLO, "messages": long}, **header)
    summary = [{"role": "user", "content": "summary of everything so far"}]
    await post(key, {**HELLO, "messages": summary}, **header)
    await usage_flush()
    _, compacted = await turns()
    assert compacted.new_messages == summary and compacted.message_count == 1


@pytest.mark.parametrize("stream", [False, True])
async def test_the_answer_is_stored_with_the_turn(stream: bool, key: str, provider: Provider) -> None:
    response = await post(key, {**HELLO, "stream": stream}, **{"x-claude-code-session-id": "cc-answer"})
    if stream:
        await drain(response)
    await usage_flush()
    (turn,) = await turns()
    assert turn.response is not None
    assert turn.response["content"] == [{"type": "text", "text": "Hello from mock"}]
    assert turn.response["model"] == "claude-sonnet-5"


async def test_x_session_id_header_is_a_fallback(key: str, provider: Provider) -> None:
    await post(key, HELLO, **{"x-session-id": "generic-client-session"})
    await usage_flush()
    (session,) = await sessions()
    assert session.external_id == "generic-client-session"
    assert len(await turns()) == 1


async def test_metadata_user_id_session_is_a_fallback(key: str, user: User, provider: Provider) -> None:
    user_id = orjson.dumps({"device_id": "d" * 64, "account_uuid": "", "session_id": "meta-session"}).decode()
    await post(key, {**HELLO, "metadata": {"user_id": user_id}})
    await usage_flush()
    (session,) = await sessions()
    assert session.external_id == "meta-session" and session.user_id == user.pk


async def test_the_claude_code_header_wins_over_the_fallbacks(key: str, provider: Provider) -> None:
    user_id = orjson.dumps({"session_id": "meta-session"}).decode()
    await post(
        key,
        {**HELLO, "metadata": {"user_id": user_id}},
        **{"x-claude-code-session-id": "header-session", "x-session-id": "other"},
    )
    await usage_flush()
    assert [s.external_id for s in await sessions()] == ["header-session"]


async def test_no_session_means_no_session_and_no_turn(key: str, provider: Provider) -> None:
    await post(key, {**HELLO, "metadata": {"user_id": "user_abc_account__session_"}})  # not JSON: no session
    await usage_flush()
    assert await sessions() == [] and await turns() == []
    (row,) = await records("request")
    assert row.session_id is None


async def test_transcripts_off_stores_no_turn_but_still_records_usage(
    key: str, provider: Provider, settings: Any
) -> None:
    settings.LYNKR_TRANSCRIPTS = False
    await post(key, HELLO, **{"x-claude-code-session-id": "private"})
    await usage_flush()
    assert await turns() == []
    (session,) = await sessions()
    (row,) = await records("request")
    assert row.session_id == session.pk and session.requests == 1


async def test_session_requests_and_cost_accumulate(key: str, provider: Provider) -> None:
    await price("upstream-model", input_per_mtok=Decimal(3), output_per_mtok=Decimal(15))
    header = {"x-claude-code-session-id": "costly"}
    for _ in range(3):
        assert (await post(key, HELLO, **header)).status_code == 200
    await usage_flush()
    await post(key, HELLO, **header)  # a later batch adds to the same session
    await usage_flush()
    (session,) = await sessions()
    rows = await records("request")
    assert session.requests == 4 == len(rows)
    total = sum((r.cost_usd for r in rows if r.cost_usd is not None), Decimal(0))
    assert total > 0 and session.cost_usd == total.quantize(Decimal("0.000001"))
    assert session.last_seen_at == max(r.created_at for r in rows)


# --- response cache ---------------------------------------------------------------------------------------------------


@pytest.fixture
def cache_on(settings: Any) -> Iterator[None]:
    settings.LYNKR_PROMPT_CACHE_ENABLED = True
    response_cache.cache_clear()
    yield
    response_cache.cache_clear()


async def test_identical_prompt_is_answered_once_from_the_upstream(
    cache_on: None, key: str, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    await price("upstream-model", input_per_mtok=Decimal(3), output_per_mtok=Decimal(15))
    first = await post(key, HELLO)
    second = await post(key, HELLO)
    assert len(upstream.messages_requests) == 1
    assert "x-lynkr-cache" not in first.headers
    assert second.headers["x-lynkr-cache"] == "hit"
    one, two = orjson.loads(first.content), orjson.loads(second.content)
    assert two["content"] == one["content"] and two["model"] == "claude-sonnet-5" and two["id"] != one["id"]
    await usage_flush()
    miss, hit = sorted(await records("request"), key=lambda r: r.created_at)
    assert miss.cache_hit is False and miss.cost_usd is not None and miss.cost_usd > 0
    assert hit.cache_hit is True and hit.cost_usd == 0 and hit.status == 200
    assert hit.request_id == second.headers["request-id"]
    assert len(await records("attempt")) == 1  # the hit made no upstream attempt


async def test_streaming_answer_is_served_from_the_cache(
    cache_on: None, key: str, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    body = {**HELLO, "stream": True}
    first = await drain(await post(key, body))
    second_response = await post(key, body)
    assert second_response.headers["x-lynkr-cache"] == "hit"
    second = await drain(second_response)
    assert len(upstream.messages_requests) == 1
    names = [frame.split(b"\n", 1)[0] for frame in second.split(b"\n\n") if frame]
    assert names[0] == b"event: message_start" and names[-1] == b"event: message_stop"
    assert b"Hello" in first and b"Hello" in second
    # A JSON request for the same prompt is a hit too: `stream` does not change the answer.
    as_json = await post(key, HELLO)
    assert as_json.headers["x-lynkr-cache"] == "hit"
    assert orjson.loads(as_json.content)["content"] == [{"type": "text", "text": "Hello from mock"}]
    await usage_flush()
    hits = [r for r in await records("request") if r.cache_hit]
    assert len(hits) == 2 and all(r.cost_usd == 0 for r in hits)


@pytest.mark.parametrize(
    "change",
    [
        {"model": "claude-haiku-4-5"},
        {"system": "You are terse."},
        {"messages": [{"role": "user", "content": "hi!"}]},
        {"temperature": 0.5},
        {"temperature": None, "top_k": 5},
        {"max_tokens": 65},
    ],
    ids=["model", "system", "messages", "temperature", "other-field", "max_tokens"],
)
async def test_any_change_to_the_prompt_is_a_miss(
    change: dict[str, Any], cache_on: None, key: str, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    base = {**HELLO, "temperature": 0}
    assert (await post(key, base)).status_code == 200
    changed = {k: v for k, v in {**base, **change}.items() if v is not None}
    response = await post(key, changed)
    assert response.status_code == 200 and "x-lynkr-cache" not in response.headers
    assert len(upstream.messages_requests) == 2
    assert (await post(key, base)).headers["x-lynkr-cache"] == "hit"  # the original is still cached
    assert len(upstream.messages_requests) == 2


async def test_requests_with_tools_are_never_cached(
    cache_on: None, key: str, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    body = {**HELLO, "tools": [{"name": "Read", "description": "Read a file", "input_schema": {"type": "object"}}]}
    for _ in range(3):
        response = await post(key, body)
        assert response.status_code == 200 and "x-lynkr-cache" not in response.headers
    assert len(upstream.messages_requests) == 3
    await usage_flush()
    assert not any(r.cache_hit for r in await records("request"))


async def test_cache_off_by_default_in_tests(key: str, provider: Provider, upstream: MockAnthropicUpstream) -> None:
    await post(key, HELLO)
    assert "x-lynkr-cache" not in (await post(key, HELLO)).headers
    assert len(upstream.messages_requests) == 2


@pytest.mark.parametrize("transcript", [True, False])
def test_a_meter_keeps_only_the_fields_it_bills_from(transcript: bool) -> None:
    """A stream's meter lives as long as the stream: it must not keep the tools and system prompt alive with it."""
    from typing import cast

    from gateway.metering import Meter
    from gateway.upstream import RequestContext
    from providers.adapters.base import InboundContext

    messages = [{"role": "user", "content": "hi"}]
    body = {
        **HELLO, "stream": True, "messages": messages, "system": "s" * 1000, "metadata": {"user_id": "u"},
        "tools": [{"name": "Read", "input_schema": {"type": "object"}}],
    }  # fmt: skip
    ctx = RequestContext(request_id="req_1", key=cast(Any, None), inbound=InboundContext())
    meter = Meter(ctx, body, {"x-claude-code-session-id": "sess-1"}, transcript=transcript)
    # The messages stay either way: the tool loop switches the transcript on for its last step.
    assert meter.body == {"model": "claude-sonnet-5", "stream": True, "max_tokens": 64, "messages": messages}
    assert meter.session == "sess-1"  # read from the headers and body before they were trimmed
    assert "tools" in body  # the request's own body is left as it was
