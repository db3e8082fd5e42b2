"""The official ``anthropic`` SDK parses every stream the OpenAI chat decoder emits for every golden fixture.

What the gateway relays is ``gateway.sse.encode`` of the decoded events; here those bytes are served by a tiny
loopback ``http.server`` (the only network in these tests) and read with ``messages.stream(...).get_final_message()``.
The SDK's Message must equal the fold the non-streaming path returns (``gateway.sse.Accumulator``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anthropic
import pytest

from gateway.sse import encode
from tests.providers.adapters.openai_chat.helpers import (
    CLIENT_MODEL,
    Json,
    chunk,
    content_type_of,
    decode,
    fixture,
    fold,
    sse,
    tool_delta,
)
from tests.providers.adapters.openai_chat.test_golden import GOLDEN


class _Loopback(ThreadingHTTPServer):
    payload: bytes = b""
    paths: list[str]


class _Handler(BaseHTTPRequestHandler):
    server: _Loopback

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.server.paths.append(self.path)
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("content-length", str(len(self.server.payload)))
        self.end_headers()
        self.wfile.write(self.server.payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def loopback() -> Iterator[_Loopback]:
    server = _Loopback(("127.0.0.1", 0), _Handler)
    server.paths = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def sdk_final_message(server: _Loopback, events: list[Json]) -> Any:
    server.payload = b"".join(encode(event) for event in events)
    http_client = anthropic.DefaultHttpxClient(trust_env=False)  # no proxy from the environment for loopback
    client = anthropic.Anthropic(
        base_url=f"http://127.0.0.1:{server.server_address[1]}", api_key="x", max_retries=0, http_client=http_client
    )
    try:
        with client.messages.stream(
            model=CLIENT_MODEL, max_tokens=1024, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            return stream.get_final_message()
    finally:
        client.close()


def assert_same_message(sdk: Any, folded: Json) -> None:
    data = sdk.model_dump(mode="json", exclude_none=True)
    for key in ("id", "type", "role", "model", "stop_reason"):
        assert data[key] == folded[key], key
    assert data.get("stop_sequence") == folded["stop_sequence"]
    assert data["content"] == folded["content"]
    assert {key: data["usage"].get(key) for key in folded["usage"]} == folded["usage"]


SUCCESSFUL = sorted(name for name, (_, _, message) in GOLDEN.items() if message is not None)
FAILING = sorted(name for name, (_, _, message) in GOLDEN.items() if message is None)


@pytest.mark.parametrize("name", SUCCESSFUL)
def test_sdk_reads_the_same_message_as_the_fold(loopback: _Loopback, name: str) -> None:
    request, _, _ = GOLDEN[name]
    events = decode([fixture(name)], request, content_type_of(name))
    assert_same_message(sdk_final_message(loopback, events), fold(events))
    assert loopback.paths[-1] == "/v1/messages"


def test_sdk_reads_interleaved_parallel_calls_like_the_fold(loopback: _Loopback) -> None:
    events = decode(
        [
            sse(
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_a",
                                "type": "function",
                                "function": {"name": "Read", "arguments": ""},
                            },
                            {
                                "index": 1,
                                "id": "call_b",
                                "type": "function",
                                "function": {"name": "Grep", "arguments": ""},
                            },
                        ]
                    }
                ),
                chunk(tool_delta(0, '{"file_path": "/a"}')),
                chunk(tool_delta(1, '{"pattern": "x"}')),
                chunk(finish="tool_calls"),
            )
        ]
    )
    assert_same_message(sdk_final_message(loopback, events), fold(events))


@pytest.mark.parametrize(
    "name",
    [*FAILING, "no finish_reason"],
)
def test_sdk_raises_on_the_error_event(loopback: _Loopback, name: str) -> None:
    if name == "no finish_reason":
        events = decode([sse(chunk({"content": "partial"}))])
    else:
        request, _, _ = GOLDEN[name]
        events = decode([fixture(name)], request, content_type_of(name))
    message = events[-1]["error"]["message"]
    with pytest.raises(anthropic.APIStatusError) as info:
        sdk_final_message(loopback, events)
    assert message in str(info.value)
