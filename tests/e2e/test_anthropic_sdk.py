"""The official anthropic SDK against a real Daphne-served Lynkr in front of a loopback Anthropic mock."""

from __future__ import annotations

import anthropic
import httpx
import pytest

from tests.e2e.server import LynkrServer
from tests.mocks.anthropic_upstream import MockAnthropicUpstream, ScriptedResponse

pytestmark = pytest.mark.e2e

CWD_SYSTEM = "You are a test.\nPrimary working directory: /tmp/work"
WRITE_TOOL = {
    "name": "Write",
    "description": "Write a file",
    "input_schema": {
        "type": "object",
        "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}},
        "required": ["file_path", "content"],
    },
}


def client(gateway: LynkrServer, **kwargs: object) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=gateway.api_key, max_retries=0, **kwargs)  # type: ignore[arg-type]


def test_create_tool_use_then_final_text(gateway: LynkrServer, module_upstream: MockAnthropicUpstream) -> None:
    sdk = client(gateway)
    first = sdk.messages.create(
        model="claude-sonnet-5",
        max_tokens=1024,
        system=CWD_SYSTEM,
        tools=[WRITE_TOOL],  # type: ignore[list-item]
        messages=[{"role": "user", "content": "Create a file hello.txt containing hi"}],
    )
    assert first.model == "claude-sonnet-5"
    assert first.stop_reason == "tool_use"
    tool_use = first.content[0]
    assert tool_use.type == "tool_use"
    assert tool_use.name == "Write"
    assert tool_use.input == {"file_path": "/tmp/work/hello.txt", "content": "hi"}
    assert first.usage.input_tokens > 0

    second = sdk.messages.create(
        model="claude-sonnet-5",
        max_tokens=1024,
        system=CWD_SYSTEM,
        tools=[WRITE_TOOL],  # type: ignore[list-item]
        messages=[
            {"role": "user", "content": "Create a file hello.txt containing hi"},
            {"role": "assistant", "content": [block.model_dump() for block in first.content]},  # type: ignore[misc]
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "ok"}]},
        ],
    )
    assert second.stop_reason == "end_turn"
    assert second.content[0].type == "text" and second.content[0].text == "DONE"

    # What reached the upstream: the provider's credential, never the client's key; the stream flag set.
    seen = module_upstream.messages_requests[-1]
    assert seen.path == "/anthropic/v1/messages"
    assert seen.headers["x-api-key"] == "upstream-secret"
    assert gateway.api_key not in seen.raw.decode() and gateway.api_key not in str(seen.headers)
    assert seen.body is not None and seen.body["stream"] is True


def test_stream_get_final_message(gateway: LynkrServer) -> None:
    sdk = client(gateway)
    texts: list[str] = []
    with sdk.messages.stream(
        model="claude-opus-4-8",
        max_tokens=512,
        messages=[{"role": "user", "content": "Say hello"}],
        extra_headers={"anthropic-beta": "interleaved-thinking-2025-05-14"},
    ) as stream:
        for text in stream.text_stream:
            texts.append(text)
        final = stream.get_final_message()
    assert "".join(texts) == "Hello from mock"
    assert len(texts) > 1  # deltas arrived one by one, not as one buffered blob
    assert final.model == "claude-opus-4-8"
    assert final.content[0].type == "text" and final.content[0].text == "Hello from mock"
    assert final.usage.output_tokens > 0


def test_beta_headers_forwarded(gateway: LynkrServer, module_upstream: MockAnthropicUpstream) -> None:
    httpx.post(
        f"{gateway.url}/v1/messages?beta=true",
        headers={
            "x-api-key": gateway.api_key,
            "anthropic-version": "2023-06-01",
            "anthropic-beta": "claude-code-20250219,context-1m-2025-08-07",
        },
        json={"model": "claude-opus-4-8", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    ).raise_for_status()
    seen = module_upstream.messages_requests[-1]
    assert seen.headers["anthropic-beta"] == "claude-code-20250219,context-1m-2025-08-07"
    assert seen.headers["anthropic-version"] == "2023-06-01"


def test_count_tokens_forwarded(gateway: LynkrServer, module_upstream: MockAnthropicUpstream) -> None:
    count = client(gateway).messages.count_tokens(
        model="claude-sonnet-5", messages=[{"role": "user", "content": "hello there"}]
    )
    assert count.input_tokens > 0
    assert module_upstream.requests[-1].path == "/anthropic/v1/messages/count_tokens"


def test_models_list(gateway: LynkrServer) -> None:
    ids = [model.id for model in client(gateway).models.list()]
    assert "claude-sonnet-5" in ids and "claude-opus-4-8" in ids


def test_authentication_error(gateway: LynkrServer) -> None:
    bad = anthropic.Anthropic(base_url=gateway.url, api_key="sk-lynkr-nope_nope", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        bad.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert caught.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    assert caught.value.response.headers["request-id"].startswith("req_")


def test_bad_request_names_the_field(gateway: LynkrServer) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client(gateway).messages.create(model="m", max_tokens=0, messages=[{"role": "user", "content": "hi"}])
    assert "max_tokens" in caught.value.message


def test_request_too_large(gateway: LynkrServer) -> None:
    huge = "x" * (2 * 1024 * 1024)
    with pytest.raises(anthropic.APIStatusError) as caught:
        client(gateway).messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": huge}])
    assert caught.value.status_code == 413
    assert caught.value.body["error"]["type"] == "request_too_large"  # type: ignore[index]


def test_rate_limit_keeps_retry_after(gateway: LynkrServer, module_upstream: MockAnthropicUpstream) -> None:
    with pytest.raises(anthropic.RateLimitError) as caught:
        client(gateway).messages.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "__error:429:rate_limit_error"}]
        )
    assert caught.value.response.headers["retry-after"] == "7"


def test_overloaded(gateway: LynkrServer) -> None:
    with pytest.raises(anthropic.APIStatusError) as caught:
        client(gateway).messages.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "__error:529:overloaded_error"}]
        )
    assert caught.value.status_code == 529
    assert caught.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


def test_upstream_5xx_is_api_error(gateway: LynkrServer, module_upstream: MockAnthropicUpstream) -> None:
    module_upstream.enqueue(ScriptedResponse(status=503, body=b"<html>bad gateway</html>"))
    with pytest.raises(anthropic.InternalServerError) as caught:
        client(gateway).messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 500
    assert caught.value.body["error"]["type"] == "api_error"  # type: ignore[index]


def test_mid_stream_error_event_relayed(gateway: LynkrServer, module_upstream: MockAnthropicUpstream) -> None:
    module_upstream.enqueue(
        ScriptedResponse(
            events=[
                (
                    "message_start",
                    {
                        "type": "message_start",
                        "message": {
                            "id": "msg_1",
                            "type": "message",
                            "role": "assistant",
                            "model": "up",
                            "content": [],
                            "stop_reason": None,
                            "stop_sequence": None,
                            "usage": {"input_tokens": 3, "output_tokens": 0},
                        },
                    },
                ),
                ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            ]
        )
    )
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        client(gateway).messages.stream(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        ) as stream,
    ):
        stream.get_final_message()
    assert "Overloaded" in str(caught.value)


def test_root_answers_head_and_get(gateway: LynkrServer) -> None:
    assert httpx.head(gateway.url + "/", timeout=10).status_code == 200
    assert httpx.get(gateway.url + "/", timeout=10).status_code == 200


def test_unknown_route_is_anthropic_shaped(gateway: LynkrServer) -> None:
    response = httpx.get(gateway.url + "/v1/nope", timeout=10)
    assert response.status_code == 404
    assert response.json()["type"] == "error"
    assert response.headers["request-id"] == response.json()["request_id"]


def test_invalid_json_is_400(gateway: LynkrServer) -> None:
    response = httpx.post(
        gateway.url + "/v1/messages", headers={"x-api-key": gateway.api_key}, content=b"{not json", timeout=10
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "not valid JSON" in response.json()["error"]["message"]
    assert response.headers["x-should-retry"] == "false"
