"""The mock Anthropic upstream, exercised over real HTTP with httpx (no Django)."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.mocks.anthropic_upstream import (
    MockAnthropicUpstream,
    ScriptedResponse,
    error_response,
)

HEADERS = {"x-api-key": "sk-test", "anthropic-version": "2023-06-01"}
SYSTEM = [
    {"type": "text", "text": "x-anthropic-billing-header: cc_version=test;"},
    {
        "type": "text",
        "text": "# Environment\nPrimary working directory: /tmp/proj \nPlatform: linux",
    },
]


@pytest.fixture
def mock() -> Iterator[MockAnthropicUpstream]:
    with MockAnthropicUpstream() as upstream:
        yield upstream
    assert upstream.errors == []


@pytest.fixture
def client(mock: MockAnthropicUpstream) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mock.url, headers=HEADERS, timeout=10) as c:
        yield c


def body(prompt: str | list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-test-1",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": prompt}],
        **extra,
    }


def sse(response: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    """Parse an SSE body into (event, data) pairs, checking the framing."""
    events = []
    for frame in response.text.split("\n\n"):
        if not frame.strip() or frame.startswith(":"):
            continue
        event_line, data_line = frame.split("\n")
        assert event_line.startswith("event: "), frame
        assert data_line.startswith("data: "), frame
        data = json.loads(data_line.removeprefix("data: "))
        assert data["type"] == event_line.removeprefix("event: ")
        events.append((data["type"], data))
    return events


def test_non_streaming_default_answer(client: httpx.Client, mock: MockAnthropicUpstream) -> None:
    r = client.post("/v1/messages?beta=true", json=body("hi there"))
    assert r.status_code == 200
    msg = r.json()
    assert msg["type"] == "message"
    assert msg["role"] == "assistant"
    assert msg["model"] == "claude-test-1"
    assert msg["content"] == [{"type": "text", "text": "Hello from mock"}]
    assert msg["stop_reason"] == "end_turn"
    assert msg["stop_sequence"] is None
    assert msg["usage"]["input_tokens"] == len(mock.requests[0].raw) // 4 > 0
    assert set(msg["usage"]) == {
        "input_tokens",
        "output_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
    }
    recorded = mock.requests[0]
    assert recorded.path == "/v1/messages?beta=true"
    assert recorded.method == "POST"
    assert recorded.headers["x-api-key"] == "sk-test"
    assert recorded.body["messages"][0]["content"] == "hi there"


def test_keep_alive_reuses_connection(mock: MockAnthropicUpstream) -> None:
    conn = http.client.HTTPConnection(mock.url.removeprefix("http://"), timeout=5)
    try:
        for _ in range(3):
            conn.request(
                "POST",
                "/v1/messages",
                json.dumps(body("a")),
                {"content-type": "application/json"},
            )
            r = conn.getresponse()
            assert r.status == 200
            assert json.loads(r.read())["content"][0]["text"] == "Hello from mock"
            sock = conn.sock
            assert sock is not None  # http.client drops the socket when the server closes
    finally:
        conn.close()


def test_streaming_default_answer(client: httpx.Client) -> None:
    r = client.post("/v1/messages", json=body([{"type": "text", "text": "hi"}], stream=True))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse(r)
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert events[0][1]["message"]["model"] == "claude-test-1"
    deltas = [d["delta"] for n, d in events if n == "content_block_delta"]
    assert len(deltas) > 1
    assert all(d["type"] == "text_delta" for d in deltas)
    assert "".join(d["text"] for d in deltas) == "Hello from mock"
    message_delta = dict(events)["message_delta"]
    assert message_delta["delta"]["stop_reason"] == "end_turn"
    assert message_delta["usage"]["output_tokens"] > 0


def test_tool_use_for_create_file(client: httpx.Client) -> None:
    prompt = [
        {"type": "text", "text": "<system-reminder>date</system-reminder>"},
        {"type": "text", "text": "Create a file hello.txt containing hi"},
    ]
    messages = [
        {"role": "user", "content": prompt},
        {"role": "system", "content": "agent types"},
    ]
    payload = {"model": "m", "max_tokens": 64, "system": SYSTEM, "messages": messages}
    msg = client.post("/v1/messages", json=payload).json()
    assert msg["stop_reason"] == "tool_use"
    [block] = msg["content"]
    assert block["type"] == "tool_use"
    assert block["name"] == "Write"
    assert block["id"].startswith("toolu_")
    assert block["input"] == {"file_path": "/tmp/proj/hello.txt", "content": "hi"}

    events = sse(client.post("/v1/messages", json=payload | {"stream": True}))
    start = dict(events)["content_block_start"]["content_block"]
    assert start["type"] == "tool_use"
    assert start["input"] == {}
    partial = "".join(d["delta"]["partial_json"] for n, d in events if n == "content_block_delta")
    assert json.loads(partial) == {"file_path": "/tmp/proj/hello.txt", "content": "hi"}
    assert dict(events)["message_delta"]["delta"]["stop_reason"] == "tool_use"


def test_create_file_without_system_prompt(client: httpx.Client) -> None:
    msg = client.post("/v1/messages", json=body('create a file notes.md containing "some text".')).json()
    assert msg["content"][0]["input"] == {
        "file_path": "notes.md",
        "content": "some text",
    }


def test_tool_result_answers_done(client: httpx.Client) -> None:
    messages = [
        {"role": "user", "content": "Create a file hello.txt containing hi"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "Write", "input": {}}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}],
        },
    ]
    msg = client.post("/v1/messages", json={"model": "m", "max_tokens": 9, "messages": messages}).json()
    assert msg["content"] == [{"type": "text", "text": "DONE"}]
    assert msg["stop_reason"] == "end_turn"


def test_max_tokens_one_and_title_call(client: httpx.Client) -> None:
    probe = client.post("/v1/messages", json=body("foo", max_tokens=1)).json()
    assert probe["content"][0]["text"] == "x"
    assert probe["stop_reason"] == "max_tokens"
    title_format = {"format": {"type": "json_schema", "schema": {"type": "object"}}}
    title = client.post(
        "/v1/messages",
        json=body("Create a file a containing b", output_config=title_format),
    ).json()
    assert json.loads(title["content"][0]["text"]) == {"title": "Mock title"}


@pytest.mark.parametrize(("status", "kind"), [(529, "overloaded_error"), (429, "rate_limit_error")])
def test_error_control_prompt(client: httpx.Client, status: int, kind: str) -> None:
    r = client.post("/v1/messages", json=body(f"please __error:{status}:{kind}", stream=True))
    assert r.status_code == status
    assert r.json() == {
        "type": "error",
        "error": {"type": kind, "message": f"mock {kind}"},
    }
    assert (r.headers.get("retry-after") == "7") == (status == 429)


def test_count_tokens(client: httpx.Client, mock: MockAnthropicUpstream) -> None:
    r = client.post("/v1/messages/count_tokens?beta=true", json=body("foo"))
    assert r.json() == {"input_tokens": len(mock.requests[-1].raw) // 4}
    with MockAnthropicUpstream(count_tokens=False) as no_count:
        r = httpx.post(f"{no_count.url}/v1/messages/count_tokens", json=body("foo"))
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "not_found_error"


def test_head_get_root_and_unknown(client: httpx.Client) -> None:
    assert client.head("/").status_code == 200
    assert client.get("/").status_code == 200
    r = client.get("/v1/models")
    assert r.status_code == 404
    assert r.json()["type"] == "error"
    assert client.post("/v1/messages", content=b"not json").status_code == 400


def test_enqueue_order(client: httpx.Client, mock: MockAnthropicUpstream) -> None:
    mock.enqueue(error_response(500, "api_error"))
    mock.enqueue(ScriptedResponse(events=[("message_stop", {"type": "message_stop"})], chunk_delay=0.01))
    assert client.post("/v1/messages", json=body("a")).status_code == 500
    assert sse(client.post("/v1/messages", json=body("a"))) == [("message_stop", {"type": "message_stop"})]
    assert client.post("/v1/messages", json=body("a")).json()["content"][0]["text"] == "Hello from mock"
    # count_tokens never consumes the queue
    mock.enqueue(error_response(503, "api_error"))
    assert client.post("/v1/messages/count_tokens", json=body("a")).status_code == 200
    assert client.post("/v1/messages", json=body("a")).status_code == 503


def test_stream_events_arrive_as_written(mock: MockAnthropicUpstream) -> None:
    events = [("ping", {"type": "ping"})] * 3
    mock.enqueue(ScriptedResponse(events=events, chunk_delay=0.3))
    arrivals = []
    with httpx.stream("POST", f"{mock.url}/v1/messages", json=body("a", stream=True)) as r:
        for line in r.iter_lines():
            if line.startswith("event:"):
                arrivals.append(time.monotonic())
    assert len(arrivals) == 3
    assert 0.2 < arrivals[1] - arrivals[0] < 1.0  # flushed per event, not buffered


def _read_events_then_close(mock: MockAnthropicUpstream, count: int) -> float:
    """Read ``count`` events of a __slow stream, close; return when we began closing."""
    seen: list[str] = []
    with httpx.stream(
        "POST",
        f"{mock.url}/v1/messages",
        json=body("now __slow", stream=True),
        timeout=5,
    ) as r:
        for line in r.iter_lines():
            if line.startswith("event: "):
                seen.append(line.removeprefix("event: "))
            if len(seen) == count:
                # Stamp before break: leaving the loop already closes the
                # connection (httpcore closes it when the generator is closed).
                closing_at = time.monotonic()
                break
    assert seen == ["message_start", "content_block_start"]
    return closing_at


def test_slow_stream_detects_client_disconnect(mock: MockAnthropicUpstream) -> None:
    closing_at = _read_events_then_close(mock, 2)
    assert mock.wait_for_disconnect(1.0), "client disconnect not noticed within 1 s"
    assert 0 <= mock.disconnects[0] - closing_at < 1.0


def test_silent_hang_detects_disconnect(mock: MockAnthropicUpstream) -> None:
    mock.enqueue(
        ScriptedResponse(
            events=[("message_start", {"type": "message_start"})],
            hang_after=1,
            hang_keepalive=None,
        )
    )
    with httpx.stream("POST", f"{mock.url}/v1/messages", json=body("a", stream=True)) as r:
        next(r.iter_lines())
    assert mock.wait_for_disconnect(1.0)


def test_non_streaming_slow_never_answers(mock: MockAnthropicUpstream) -> None:
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{mock.url}/v1/messages",
            json=body("__slow"),
            timeout=httpx.Timeout(5, read=0.3),
        )
    assert mock.wait_for_disconnect(1.0)


def test_many_concurrent_clients(mock: MockAnthropicUpstream) -> None:
    failures: list[BaseException] = []

    def worker(stream: bool) -> None:
        try:
            with httpx.Client(base_url=mock.url, timeout=10) as c:
                for _ in range(5):
                    r = c.post("/v1/messages", json=body("hi", stream=stream))
                    assert r.status_code == 200
                    assert "message_stop" in r.text if stream else r.json()["content"][0]["text"] == "Hello from mock"
        except (AssertionError, httpx.HTTPError) as exc:  # reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(i % 2 == 0,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert failures == []
    assert len(mock.messages_requests) == 200


def test_stop_cuts_kept_alive_connections() -> None:
    upstream = MockAnthropicUpstream().start()
    with httpx.Client(base_url=upstream.url, timeout=2) as c:
        assert c.post("/v1/messages", json=body("a")).status_code == 200
        upstream.stop()
        with pytest.raises(httpx.TransportError):
            c.post("/v1/messages", json=body("a"))
