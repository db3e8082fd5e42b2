"""The adapter end to end without an upstream: registry, decoder choice, the thinking-signature and tool-id round
trips across two turns, and the official ``anthropic`` SDK reading what we emit (served from a loopback server)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anthropic
import orjson
import pytest

from gateway.sse import encode
from gateway.wire.errors import RateLimitError
from providers.adapters import adapter_for
from providers.adapters.base import InboundContext
from providers.adapters.common.signatures import signature_read
from providers.adapters.common.toolnames import toolname_encode
from providers.adapters.openai_responses.adapter import OpenAIResponsesAdapter
from providers.adapters.openai_responses.stream import ResponsesJsonDecoder, ResponsesSseDecoder
from providers.adapters.openai_responses.translate import build_request

from ._helpers import INBOUND, SECRET, fixture, fold, provider, route

Json = dict[str, Any]
ADAPTER = OpenAIResponsesAdapter()
RS_ID = "rs_6806bfca0b2481918a5748308061a2600d3ce51bdffd5476"


def _stream(name: str, body: Json, inbound: InboundContext = INBOUND) -> list[Json]:
    decoder = ADAPTER.stream_decoder(route(), body, inbound, "text/event-stream; charset=utf-8")
    data = fixture(name)
    events: list[Json] = []
    for i in range(0, len(data), 50):
        events += decoder.feed(data[i : i + 50])
    return events + decoder.flush()


def _request(body: Json, inbound: InboundContext = INBOUND) -> Json:
    out: Json = orjson.loads(ADAPTER.build_request(route(), body, inbound).body)
    return out


def _first_turn(**fields: Any) -> Json:
    tool = {"name": "get_weather", "description": "Weather.", "input_schema": {"type": "object"}}
    messages = [{"role": "user", "content": "What is the weather like in Paris today?"}]
    return {"model": "claude-opus-5-5", "max_tokens": 4096, "messages": messages, "tools": [tool], **fields}


# --- the adapter interface ------------------------------------------------------------------------------------


def test_registered_under_its_kind() -> None:
    assert isinstance(adapter_for("openai_responses"), OpenAIResponsesAdapter)
    assert OpenAIResponsesAdapter.kind == "openai_responses"


def test_build_request_is_the_translation() -> None:
    body = _first_turn()
    assert ADAPTER.build_request(route(), body, INBOUND) == build_request(route(), body, INBOUND)


def test_stream_decoder_by_content_type() -> None:
    body = _first_turn()
    assert isinstance(ADAPTER.stream_decoder(route(), body, INBOUND, "text/event-stream"), ResponsesSseDecoder)
    assert isinstance(ADAPTER.stream_decoder(route(), body, INBOUND, ""), ResponsesSseDecoder)
    assert isinstance(ADAPTER.stream_decoder(route(), body, INBOUND, "application/json"), ResponsesJsonDecoder)


def test_message_start_uses_the_client_model_and_the_input_estimate() -> None:
    events = _stream("stream_text.sse", _first_turn())
    message = events[0]["message"]
    assert message["model"] == "claude-opus-5-5"
    assert message["id"].startswith("msg_") and len(message["id"]) == 28
    assert message["usage"] == {"input_tokens": 1234, "output_tokens": 0}


def test_encoded_tool_names_are_restored_including_tools_revealed_by_tool_search() -> None:
    revealed = "mcp__server__tool.with.dots"
    search = f'<function>{{"name": "{revealed}", "parameters": {{"type": "object"}}}}</function>'
    body = _first_turn(
        tools=[{"name": "ToolSearch", "input_schema": {"type": "object"}}],
        messages=[{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": search}]}],
    )
    assert [t["name"] for t in _request(body)["tools"]] == ["ToolSearch", toolname_encode(revealed)]
    call = {
        "type": "function_call",
        "id": "fc_1",
        "call_id": "call_1",
        "name": toolname_encode(revealed),
        "arguments": "{}",
    }
    data = b"".join(
        b"data: " + orjson.dumps(e) + b"\n\n"
        for e in (
            {"type": "response.output_item.done", "output_index": 0, "item": call},
            {"type": "response.completed", "response": {"status": "completed"}},
        )
    )
    decoder = ADAPTER.stream_decoder(route(), body, INBOUND, "text/event-stream")
    message = fold(decoder.feed(data) + decoder.flush())
    assert message["content"][0]["name"] == revealed


def test_error_from_response() -> None:
    body = (
        b'{"error": {"message": "Rate limit reached", "type": "requests", "param": null,'
        b' "code": "rate_limit_exceeded"}}'
    )
    error = ADAPTER.error_from_response(provider(), 429, {"retry-after": "3"}, body)
    assert isinstance(error, RateLimitError)
    assert error.message == "upstream: Rate limit reached"


# --- round trips across turns ---------------------------------------------------------------------------------


def test_thinking_signature_round_trip() -> None:
    first = _first_turn(thinking={"type": "adaptive"}, output_config={"effort": "medium"})
    message = fold(_stream("stream_reasoning.sse", first))
    thinking = message["content"][0]
    assert thinking["type"] == "thinking" and thinking["signature"].startswith("lynkr1.")
    # The client echoes the assistant turn exactly as received (claude-code-wire.md §3) and asks again.
    second = {**first, "messages": [*first["messages"], {"role": "assistant", "content": message["content"]}]}
    second["messages"].append({"role": "user", "content": "And tomorrow?"})
    items = _request(second)["input"]
    assert [item["type"] for item in items] == ["message", "reasoning", "message", "message"]
    reasoning = items[1]
    assert reasoning["id"] == RS_ID
    assert reasoning["summary"] == [{"type": "summary_text", "text": thinking["thinking"]}]
    assert reasoning["encrypted_content"].startswith("gAAAAABoBr_K")
    assert items[2] == {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "Hello! How can I assist you today?"}],
    }
    # Another deployment (another signing key) cannot read the signature: the thinking is dropped.
    other = InboundContext(signing_key=b"another deployment")
    assert [item["type"] for item in _request(second, other)["input"]] == ["message", "message", "message"]


def test_redacted_reasoning_round_trip() -> None:
    enc = "gAAAAABredacted"
    events = [
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {"id": "rs_9", "type": "reasoning", "summary": []},
        },
        {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": {"id": "rs_9", "type": "reasoning", "summary": [], "encrypted_content": enc},
        },
        {
            "type": "response.output_item.done",
            "output_index": 1,
            "item": {
                "type": "function_call",
                "id": "fc_9",
                "call_id": "call_9",
                "name": "get_weather",
                "arguments": "{}",
            },
        },
        {"type": "response.completed", "response": {"status": "completed"}},
    ]
    first = _first_turn(thinking={"type": "adaptive"})
    decoder = ADAPTER.stream_decoder(route(), first, INBOUND, "text/event-stream")
    message = fold(decoder.feed(b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events)) + decoder.flush())
    assert [b["type"] for b in message["content"]] == ["redacted_thinking", "tool_use"]
    assert signature_read(message["content"][0]["data"], SECRET) == {"k": "responses", "id": "rs_9", "enc": enc}
    result = {"type": "tool_result", "tool_use_id": "call_9", "content": "12"}
    second = {**first, "messages": [*first["messages"], {"role": "assistant", "content": message["content"]}]}
    second["messages"].append({"role": "user", "content": [result]})
    items = _request(second)["input"]
    assert items[1:] == [
        {"type": "reasoning", "id": "rs_9", "summary": [], "encrypted_content": enc},
        {"type": "function_call", "call_id": "call_9", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_9", "output": "12"},
    ]


def test_tool_ids_round_trip() -> None:
    first = _first_turn()
    message = fold(_stream("stream_text_and_tools.sse", first))
    ids = [b["id"] for b in message["content"] if b["type"] == "tool_use"]
    assert ids == ["call_12345xyz", "call_67890abc"]
    results = [{"type": "tool_result", "tool_use_id": i, "content": f"result {i}"} for i in ids]
    second = {**first, "messages": [*first["messages"], {"role": "assistant", "content": message["content"]}]}
    second["messages"].append({"role": "user", "content": results})
    items = _request(second)["input"]
    assert [(item["type"], item.get("call_id")) for item in items] == [
        ("message", None),
        ("message", None),
        ("function_call", "call_12345xyz"),
        ("function_call", "call_67890abc"),
        ("function_call_output", "call_12345xyz"),
        ("function_call_output", "call_67890abc"),
    ]
    assert orjson.loads(items[3]["arguments"]) == {"location": "Bogotá, Colombia"}


# --- the official anthropic SDK reads our stream --------------------------------------------------------------


class _Server:
    """A loopback HTTP server answering POST /v1/messages with prepared SSE bytes, in small writes."""

    def __init__(self) -> None:
        self.body = b""
        self.requests: list[Json] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                owner.requests.append(orjson.loads(self.rfile.read(int(self.headers["content-length"]))))
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.end_headers()
                for i in range(0, len(owner.body), 97):
                    self.wfile.write(owner.body[i : i + 97])
                    self.wfile.flush()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.close()


def _client(server: _Server) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key="sk-test", max_retries=0)


@pytest.mark.parametrize(
    "name",
    [
        "stream_text.sse",
        "stream_tool_use.sse",
        "stream_reasoning.sse",
        "stream_text_and_tools.sse",
        "stream_incomplete.sse",
    ],
)
def test_anthropic_sdk_reads_our_stream(server: _Server, name: str) -> None:
    events = _stream(name, _first_turn())
    server.body = b"".join(encode(e) for e in events)
    with _client(server).messages.stream(
        model="claude-opus-5-5", max_tokens=1024, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        final = stream.get_final_message()
    expected = fold(events)
    assert final.model_dump(exclude_none=True) == {
        **{k: v for k, v in expected.items() if v is not None},
        "content": [{k: v for k, v in block.items() if v is not None} for block in expected["content"]],
        "usage": final.usage.model_dump(exclude_none=True),
    }
    assert final.usage.input_tokens == expected["usage"]["input_tokens"]
    assert final.usage.output_tokens == expected["usage"]["output_tokens"]
    assert final.usage.cache_read_input_tokens == expected["usage"]["cache_read_input_tokens"]
    assert server.requests[0]["stream"] is True


def test_anthropic_sdk_sees_the_upstream_failure(server: _Server) -> None:
    server.body = b"".join(encode(e) for e in _stream("stream_failed.sse", _first_turn()))
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        _client(server).messages.stream(
            model="claude-opus-5-5", max_tokens=1024, messages=[{"role": "user", "content": "Hi"}]
        ) as stream,
    ):
        stream.get_final_message()
    assert "The model failed to generate a response." in str(caught.value)
