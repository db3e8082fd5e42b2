"""The /v1 API in-process (Django's async test client) against a real loopback upstream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import AsyncClient

from gateway import pipeline
from gateway.services import apikey_create
from providers.models import Provider
from tests.mocks.anthropic_upstream import MockAnthropicUpstream, ScriptedResponse
from tests.mocks.openai_upstream import MockOpenAIUpstream
from tests.services import free_port

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = {"model": "claude-sonnet-5", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def key() -> str:
    user = User.objects.create_user(username="api-user", password="x" * 12)
    return apikey_create(user=user).secret


def _provider(url: str, **fields: Any) -> Provider:
    return Provider.objects.create(name=fields.pop("name", "up"), kind="anthropic", base_url=url, **fields)


@pytest.fixture
def provider(upstream: MockAnthropicUpstream) -> Provider:
    return _provider(upstream.url, api_key="upstream-secret", model_override="upstream-model")


async def post(client: AsyncClient, key: str, body: Any, path: str = "/v1/messages?beta=true", **headers: str) -> Any:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return await client.post(path, raw, content_type="application/json", headers={"x-api-key": key, **headers})


async def test_json_answer_carries_client_model(key: str, provider: Provider, upstream: MockAnthropicUpstream) -> None:
    response = await post(AsyncClient(), key, HELLO)
    assert response.status_code == 200
    body = orjson.loads(response.content)
    assert body["model"] == "claude-sonnet-5"  # not the upstream's name for it
    assert body["content"] == [{"type": "text", "text": "Hello from mock"}]
    sent = upstream.messages_requests[-1]
    assert sent.body is not None and sent.body["model"] == "upstream-model"
    assert sent.headers["x-api-key"] == "upstream-secret"
    assert response.headers["request-id"].startswith("req_")


async def test_stream_has_event_lines_for_every_event(key: str, provider: Provider) -> None:
    response = await post(AsyncClient(), key, {**HELLO, "stream": True})
    assert response.status_code == 200
    assert response["content-type"].startswith("text/event-stream")
    raw = b"".join([chunk async for chunk in response.streaming_content]).decode()
    frames = [frame for frame in raw.split("\n\n") if frame]
    assert frames[0].startswith("event: message_start\n")
    assert all(frame.startswith("event: ") for frame in frames)
    assert frames[-1].startswith("event: message_stop")
    start = orjson.loads(frames[0].split("data: ", 1)[1])
    assert start["message"]["model"] == "claude-sonnet-5"


async def test_data_only_upstream_sse_gets_event_lines(
    key: str, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    frames = [
        {"type": "message_start", "message": {"id": "m", "type": "message", "role": "assistant", "model": "u",
                                              "content": [], "usage": {"input_tokens": 1, "output_tokens": 0}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "ok"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 1}},
        {"type": "message_stop"},
    ]  # fmt: skip
    body = b"".join(b"data: " + orjson.dumps(frame) + b"\n\n" for frame in frames)
    upstream.enqueue(ScriptedResponse(body=body, headers={"content-type": "text/event-stream"}))
    response = await post(AsyncClient(), key, {**HELLO, "stream": True})
    raw = b"".join([chunk async for chunk in response.streaming_content]).decode()
    assert raw.count("event: ") == len(frames)
    assert "event: content_block_delta\n" in raw


async def test_truncated_upstream_stream_ends_with_error_event(
    key: str, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    message = {"id": "m", "type": "message", "role": "assistant", "model": "u", "content": [],
               "usage": {"input_tokens": 1, "output_tokens": 0}}  # fmt: skip
    start = {"type": "message_start", "message": message}
    block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    upstream.enqueue(ScriptedResponse(events=[("message_start", start), ("content_block_start", block)]))
    response = await post(AsyncClient(), key, {**HELLO, "stream": True})
    raw = b"".join([chunk async for chunk in response.streaming_content]).decode()
    # Content had started, so no failover: the stream ends with an error event, never a fake end_turn.
    assert raw.rstrip().split("\n\n")[-1].startswith("event: error\n")
    assert "ended before message_stop" in raw
    assert len(upstream.messages_requests) == 1


async def test_failure_before_content_is_retried_invisibly(
    key: str, provider: Provider, upstream: MockAnthropicUpstream, settings: Any
) -> None:
    settings.LYNKR_RETRY_INITIAL_DELAY = 0.01
    message = {"id": "m", "type": "message", "role": "assistant", "model": "u", "content": [],
               "usage": {"input_tokens": 1, "output_tokens": 0}}  # fmt: skip
    upstream.enqueue(ScriptedResponse(events=[("message_start", {"type": "message_start", "message": message})]))
    response = await post(AsyncClient(), key, {**HELLO, "stream": True})
    raw = b"".join([chunk async for chunk in response.streaming_content]).decode()
    assert "event: error" not in raw and raw.count("event: message_start") == 1
    assert "Hello from mock" in raw.replace('"text":"', "").replace('"', "") or "Hello" in raw
    assert len(upstream.messages_requests) == 2


async def test_non_streaming_upstream_answer_is_accepted(
    key: str, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    message = {"id": "m1", "type": "message", "role": "assistant", "model": "u", "stop_reason": "end_turn",
               "stop_sequence": None, "content": [{"type": "text", "text": "whole"}],
               "usage": {"input_tokens": 2, "output_tokens": 1}}  # fmt: skip
    upstream.enqueue(ScriptedResponse(body=message))
    response = await post(AsyncClient(), key, HELLO)
    body = orjson.loads(response.content)
    assert body["content"] == [{"type": "text", "text": "whole"}]
    assert body["model"] == "claude-sonnet-5"
    assert body["usage"]["output_tokens"] == 1


@pytest.fixture
def openai_upstream() -> Iterator[MockOpenAIUpstream]:
    with MockOpenAIUpstream() as mock:
        yield mock
        assert mock.errors == [], mock.errors


@pytest.mark.parametrize("streaming", [True, False])
async def test_openai_upstream_streams_only_for_a_streaming_client(
    key: str, openai_upstream: MockOpenAIUpstream, streaming: bool
) -> None:
    """A non-streaming client's turn goes upstream as one ChatCompletion (``stream: false``), decoded into the same
    events a stream would give and folded into the same Message."""
    await sync_to_async(Provider.objects.create)(
        name="oa", kind="openai_chat", base_url=openai_upstream.url, model_override="gpt-mock"
    )
    response = await post(AsyncClient(), key, {**HELLO, "stream": True} if streaming else HELLO)
    assert response.status_code == 200
    sent = openai_upstream.chat_requests[-1]
    assert sent.body is not None and sent.body["stream"] is streaming
    assert ("stream_options" in sent.body) is streaming
    assert sent.headers["accept"] == ("text/event-stream" if streaming else "application/json")
    if streaming:
        events = b"".join([chunk async for chunk in response.streaming_content])
        assert events.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
        datas = [orjson.loads(line[6:]) for line in events.split(b"\n") if line.startswith(b"data: ")]
        text = "".join(d["delta"]["text"] for d in datas if d["type"] == "content_block_delta")
        assert text == "Hello from mock"
        return
    body = orjson.loads(response.content)
    assert body["content"] == [{"type": "text", "text": "Hello from mock"}]
    assert body["model"] == "claude-sonnet-5" and body["stop_reason"] == "end_turn"
    assert body["usage"]["input_tokens"] > 0 and body["usage"]["output_tokens"] > 0


async def test_authentication_error_shape() -> None:
    response = await post(AsyncClient(), "sk-lynkr-nothing_here", HELLO)
    assert response.status_code == 401
    body = orjson.loads(response.content)
    assert body["type"] == "error" and body["error"]["type"] == "authentication_error"
    assert body["request_id"] == response.headers["request-id"]
    assert response.headers["x-should-retry"] == "false"


async def test_request_id_taken_from_caller(key: str, provider: Provider) -> None:
    response = await post(AsyncClient(), key, HELLO, **{"x-request-id": "trace-123"})
    # Echoed for correlation, but never used as our id: usage records are keyed by it.
    assert response.headers["x-request-id"] == "trace-123"
    assert response.headers["request-id"].startswith("req_")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"[1, 2]", "must be a JSON object"),
        ({"model": "m", "max_tokens": 5}, "messages: Field required"),
        ({"model": "m", "max_tokens": 5, "messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
        ({"model": "m", "max_tokens": 5, "messages": "nope"}, "messages"),
        ({"model": "", "max_tokens": 5, "messages": []}, "model"),
        ({"model": "m", "max_tokens": 5, "messages": [], "tools": [{"name": ""}]}, "tools.0.name"),
        ({"model": "m", "max_tokens": 5, "messages": [], "tools": {"name": "Read"}}, "tools"),
        (b'{"model": "m", "max_tokens": 5, "messages": [], "tools": [}', "not valid JSON"),
    ],
)
async def test_schema_violations_name_the_field(key: str, body: Any, fragment: str) -> None:
    for _ in range(2):  # refused tools are not kept (gateway/wire/body.py): the second request is refused as well
        response = await post(AsyncClient(), key, body)
        assert response.status_code == 400
        error = orjson.loads(response.content)["error"]
        assert error["type"] == "invalid_request_error"
        assert fragment in error["message"]


async def test_body_over_limit_is_413(key: str, settings: Any) -> None:
    settings.LYNKR_MAX_BODY_BYTES = 2048
    response = await post(AsyncClient(), key, {**HELLO, "pad": "x" * 4096})
    assert response.status_code == 413
    assert orjson.loads(response.content)["error"]["type"] == "request_too_large"


async def test_no_provider_is_404_with_explanation(key: str) -> None:
    response = await post(AsyncClient(), key, HELLO)
    assert response.status_code == 404
    assert "no provider is configured" in orjson.loads(response.content)["error"]["message"]


async def test_unreachable_upstream_is_retryable_api_error(key: str) -> None:
    await sync_to_async(_provider)(f"http://127.0.0.1:{free_port()}", connect_timeout=2)
    response = await post(AsyncClient(), key, HELLO)
    assert response.status_code == 500
    assert orjson.loads(response.content)["error"]["type"] == "api_error"
    assert "x-should-retry" not in response.headers


async def test_upstream_rejecting_our_credential_is_not_a_client_auth_error(
    key: str, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    upstream.enqueue(
        ScriptedResponse(status=401, body={"type": "error", "error": {"type": "authentication_error", "message": "x"}})
    )
    response = await post(AsyncClient(), key, HELLO)
    assert response.status_code == 500
    assert "rejected the gateway's credentials" in orjson.loads(response.content)["error"]["message"]
    assert response.headers["x-should-retry"] == "false"


async def test_unexpected_exception_is_json_not_html(
    key: str, provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def boom(*_: Any) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(pipeline, "messages_open", boom)
    response = await post(AsyncClient(), key, HELLO)
    assert response.status_code == 500
    body = orjson.loads(response.content)
    assert body["error"] == {"type": "api_error", "message": "internal gateway error"}


async def test_count_tokens_falls_back_to_local_count(key: str) -> None:
    with MockAnthropicUpstream(count_tokens=False) as upstream:
        await sync_to_async(_provider)(upstream.url)
        body = {
            "model": "claude-sonnet-5",
            "messages": [{"role": "user", "content": "foo"}],
            "tools": [{"name": "Read", "description": "Read a file", "input_schema": {"type": "object"}}],
        }
        first = await post(AsyncClient(), key, body, path="/v1/messages/count_tokens?beta=true")
        assert first.status_code == 200
        with_tools = orjson.loads(first.content)["input_tokens"]
        second = await post(AsyncClient(), key, {**body, "tools": []}, path="/v1/messages/count_tokens?beta=true")
        without_tools = orjson.loads(second.content)["input_tokens"]
        assert with_tools > without_tools > 0  # tools are counted
        # The 404 was learnt: the second count did not ask the upstream again.
        assert [r.path for r in upstream.requests].count("/v1/messages/count_tokens") == 1


async def test_models_list_and_get(key: str, upstream: MockAnthropicUpstream) -> None:
    await sync_to_async(_provider)(upstream.url, advertised_models=["a", "b", "c"])
    client = AsyncClient()
    headers = {"authorization": f"Bearer {key}"}
    page = orjson.loads((await client.get("/v1/models?limit=2", headers=headers)).content)
    assert [m["id"] for m in page["data"]] == ["a", "b"] and page["has_more"] is True
    rest = orjson.loads((await client.get("/v1/models?after_id=b", headers=headers)).content)
    assert [m["id"] for m in rest["data"]] == ["c"] and rest["has_more"] is False
    assert (await client.get("/v1/models/b", headers=headers)).status_code == 200
    assert (await client.get("/v1/models/zzz", headers=headers)).status_code == 404
    assert (await client.get("/v1/models")).status_code == 401


async def test_model_not_served_by_any_provider(key: str, upstream: MockAnthropicUpstream) -> None:
    await sync_to_async(_provider)(upstream.url, advertised_models=["only-this"])
    response = await post(AsyncClient(), key, HELLO)
    assert response.status_code == 404
    assert "claude-sonnet-5" in orjson.loads(response.content)["error"]["message"]


def test_html_error_pages_never_served(client: Any) -> None:
    response = client.get("/v1/anything/else")
    assert response.status_code == 404 and response["content-type"] == "application/json"
    response = client.put("/v1/messages")
    assert response["content-type"].startswith("application/json")


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    yield


async def test_silent_upstream_gets_pings(
    key: str, provider: Provider, upstream: MockAnthropicUpstream, settings: Any
) -> None:
    from tests.mocks.anthropic_upstream import stream_events

    settings.LYNKR_STREAM_PING_INTERVAL = 0.1
    events = stream_events("u", [{"type": "text", "text": "slow"}], "end_turn", 5)
    upstream.enqueue(ScriptedResponse(events=events, chunk_delay=0.35))
    response = await post(AsyncClient(), key, {**HELLO, "stream": True})
    raw = b"".join([chunk async for chunk in response.streaming_content]).decode()
    names = [frame.split("\n", 1)[0][7:] for frame in raw.split("\n\n") if frame]
    upstream_pings = sum(1 for name, _ in events if name == "ping")
    assert names.count("ping") > upstream_pings  # ours, sent while the upstream was silent
    assert names[0] == "message_start" and names[-1] == "message_stop"
