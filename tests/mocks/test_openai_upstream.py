"""The mock OpenAI Chat Completions upstream, driven with httpx over real loopback HTTP."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.mocks.base import ScriptedResponse, sse_data
from tests.mocks.openai_upstream import MockOpenAIUpstream, openai_error

SYSTEM = {"role": "system", "content": "# Environment\nPrimary working directory: /tmp/proj\nPlatform: linux"}
TOOLS = [
    {"type": "function", "function": {"name": name, "description": name, "parameters": {"type": "object"}}}
    for name in ("Bash", "Edit", "Read", "Write")
]
PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\nmock").decode()
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "claude_code"


@dataclass
class Answer:
    """One assistant turn, assembled from a chat.completion or its chunk stream."""

    content: str = ""
    reasoning: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    chunks: list[dict[str, Any]] = field(default_factory=list)

    def message(self) -> dict[str, Any]:
        """The assistant message to send back in the next request."""
        out: dict[str, Any] = {"role": "assistant", "content": self.content or None}
        if self.tool_calls:
            out["tool_calls"] = self.tool_calls
        return out


@pytest.fixture
def mock() -> Iterator[MockOpenAIUpstream]:
    with MockOpenAIUpstream() as upstream:
        yield upstream
    assert upstream.errors == []


@pytest.fixture
def client(mock: MockOpenAIUpstream) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mock.url, headers={"Authorization": "Bearer sk-test"}, timeout=10) as c:
        yield c


def parse_stream(response: httpx.Response) -> Answer:
    """Check the data-only SSE framing and assemble the deltas like an OpenAI client does."""
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = [f for f in response.text.split("\n\n") if f.strip()]
    assert frames[-1] == "data: [DONE]"
    answer = Answer()
    calls: dict[int, dict[str, Any]] = {}
    for frame in frames[:-1]:
        assert frame.startswith("data: ") and "\n" not in frame, frame
        chunk = json.loads(frame.removeprefix("data: "))
        assert chunk["object"] == "chat.completion.chunk"
        answer.chunks.append(chunk)
        if chunk.get("usage"):
            answer.usage = chunk["usage"]
        for choice in chunk["choices"]:
            delta = choice["delta"]
            answer.content += delta.get("content") or ""
            answer.reasoning += delta.get("reasoning_content") or ""
            for part in delta.get("tool_calls") or []:
                call = calls.setdefault(part["index"], {"id": None, "type": "function", "function": {}})
                if "id" in part:
                    assert call["id"] is None, "id only in the first fragment"
                    call["id"] = part["id"]
                    call["function"]["name"] = part["function"]["name"]
                    call["function"]["arguments"] = ""
                call["function"]["arguments"] += part["function"].get("arguments", "")
            if choice["finish_reason"]:
                answer.finish_reason = choice["finish_reason"]
    answer.tool_calls = [calls[i] for i in sorted(calls)]
    return answer


def parse_json(response: httpx.Response) -> Answer:
    body = response.json()
    assert body["object"] == "chat.completion"
    (choice,) = body["choices"]
    message = choice["message"]
    assert message["role"] == "assistant"
    return Answer(
        content=message["content"] or "",
        reasoning=message.get("reasoning_content") or "",
        tool_calls=message.get("tool_calls") or [],
        finish_reason=choice["finish_reason"],
        usage=body["usage"],
    )


def chat(
    client: httpx.Client,
    messages: list[dict[str, Any]],
    stream: bool,
    path: str = "/v1/chat/completions",
    **extra: Any,
) -> Answer:
    body = {"model": "gpt-test", "messages": messages, "tools": TOOLS, **extra}
    if stream:
        body["stream"] = True
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    return parse_stream(response) if stream else parse_json(response)


def only_call(answer: Answer) -> tuple[str, dict[str, Any]]:
    assert answer.finish_reason == "tool_calls"
    (call,) = answer.tool_calls
    assert call["type"] == "function"
    assert call["id"].startswith("call_")
    return call["function"]["name"], json.loads(call["function"]["arguments"])


def tool_result(answer: Answer, content: Any) -> list[dict[str, Any]]:
    return [answer.message(), {"role": "tool", "tool_call_id": answer.tool_calls[0]["id"], "content": content}]


@pytest.mark.parametrize("stream", [False, True])
def test_create_file_two_turns(client: httpx.Client, mock: MockOpenAIUpstream, stream: bool) -> None:
    messages: list[dict[str, Any]] = [SYSTEM, {"role": "user", "content": "Create a file hello.txt containing hi"}]
    first = chat(client, messages, stream)
    assert only_call(first) == ("Write", {"file_path": "/tmp/proj/hello.txt", "content": "hi"})
    messages += tool_result(first, "File created successfully at: /tmp/proj/hello.txt")
    done = chat(client, messages, stream)
    assert (done.content, done.finish_reason, done.tool_calls) == ("DONE", "stop", [])
    assert len(mock.chat_requests) == 2


@pytest.mark.parametrize("stream", [False, True])
def test_run_command(client: httpx.Client, stream: bool) -> None:
    messages: list[dict[str, Any]] = [SYSTEM, {"role": "user", "content": "Run the command: echo lynkr-$((6*7))"}]
    first = chat(client, messages, stream)
    assert only_call(first) == ("Bash", {"command": "echo lynkr-$((6*7))", "description": "run"})
    # Tool content as an array of text parts is allowed too.
    messages += tool_result(first, [{"type": "text", "text": "lynkr-42\n"}])
    assert chat(client, messages, stream).content == "OUTPUT: lynkr-42"


@pytest.mark.parametrize("stream", [False, True])
def test_replace_three_turns(client: httpx.Client, mock: MockOpenAIUpstream, stream: bool) -> None:
    messages: list[dict[str, Any]] = [SYSTEM, {"role": "user", "content": "Replace alpha with beta in a.txt"}]
    read = chat(client, messages, stream)
    assert only_call(read) == ("Read", {"file_path": "/tmp/proj/a.txt"})
    messages += tool_result(read, "     1\talpha\n")
    edit = chat(client, messages, stream)
    assert only_call(edit) == ("Edit", {"file_path": "/tmp/proj/a.txt", "old_string": "alpha", "new_string": "beta"})
    messages += tool_result(edit, "The file /tmp/proj/a.txt has been updated.")
    assert chat(client, messages, stream).content == "DONE"
    assert len(mock.chat_requests) == 3


@pytest.mark.parametrize("with_image", [True, False])
def test_describe_image_via_following_user_message(client: httpx.Client, with_image: bool) -> None:
    messages: list[dict[str, Any]] = [SYSTEM, {"role": "user", "content": "Describe the image shot.png"}]
    read = chat(client, messages, stream=True)
    assert only_call(read) == ("Read", {"file_path": "/tmp/proj/shot.png"})
    messages += tool_result(read, "[image attached below]")
    if with_image:
        # Chat Completions takes images only from the user: they go into a user message after the tool message.
        parts = [{"type": "text", "text": "Tool result image:"}, {"type": "image_url", "image_url": {"url": PNG}}]
        messages.append({"role": "user", "content": parts})
    assert chat(client, messages, stream=True).content == ("IMAGE SEEN" if with_image else "NO IMAGE")


def test_stream_shape_and_usage(client: httpx.Client, mock: MockOpenAIUpstream) -> None:
    messages = [SYSTEM, {"role": "user", "content": "Create a file hello.txt containing some longer text"}]
    answer = chat(client, messages, stream=True, stream_options={"include_usage": True})
    first, *middle, last_choice, usage_chunk = answer.chunks
    assert first["choices"][0]["delta"]["role"] == "assistant"
    fragments = [c["choices"][0]["delta"]["tool_calls"][0] for c in middle]
    assert fragments[0]["id"] and fragments[0]["function"]["name"] == "Write"
    assert len(fragments) > 2, "arguments arrive in several fragments"
    assert all("id" not in f and "name" not in f["function"] for f in fragments[1:])
    assert last_choice["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"}
    assert usage_chunk["choices"] == []
    assert all(c["usage"] is None for c in answer.chunks[:-1])
    usage = usage_chunk["usage"]
    assert usage["prompt_tokens"] == len(mock.requests[0].raw) // 4
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0


def test_text_is_split_and_no_usage_without_include_usage(client: httpx.Client) -> None:
    answer = chat(client, [{"role": "user", "content": "hello"}], stream=True)
    deltas = [c["choices"][0]["delta"].get("content") for c in answer.chunks[1:-1]]
    assert "".join(deltas) == "Hello from mock" and len(deltas) > 1
    assert answer.usage is None and all("usage" not in c for c in answer.chunks)
    assert answer.finish_reason == "stop"


@pytest.mark.parametrize("stream", [False, True])
def test_reasoning_effort_adds_reasoning_content(client: httpx.Client, stream: bool) -> None:
    messages = [{"role": "user", "content": "What is 2+2?"}]
    answer = chat(client, messages, stream, reasoning_effort="high", stream_options={"include_usage": True})
    assert (answer.content, answer.reasoning) == ("4", "thinking about it")
    assert answer.usage and answer.usage["completion_tokens_details"]["reasoning_tokens"] > 0
    plain = chat(client, messages, stream)
    assert (plain.content, plain.reasoning) == ("4", "")


def test_title_call_with_json_schema(client: httpx.Client) -> None:
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "title", "strict": True, "schema": {"type": "object"}},
    }
    answer = chat(client, [{"role": "user", "content": "fix the login bug"}], False, response_format=response_format)
    assert json.loads(answer.content) == {"title": "Mock title"}


@pytest.mark.parametrize(
    "path",
    [
        "/v1/chat/completions",
        "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
        "/models/chat/completions?api-version=2024-05-01-preview",
        "/serving-endpoints/my-llm/invocations",
    ],
)
def test_paths(mock: MockOpenAIUpstream, path: str) -> None:
    with httpx.Client(base_url=mock.url, headers={"api-key": "azure-key"}, timeout=10) as c:
        answer = chat(c, [{"role": "user", "content": "What is 2+2?"}], stream=False, path=path)
    assert answer.content == "4"
    (request,) = mock.chat_requests
    assert request.path == path
    assert request.headers["api-key"] == "azure-key"
    assert "authorization" not in request.headers


def test_api_key_is_enforced_when_set() -> None:
    with MockOpenAIUpstream(api_key="sk-right") as mock:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        wrong = httpx.post(f"{mock.url}/v1/chat/completions", json=body, headers={"Authorization": "Bearer sk-x"})
        assert wrong.status_code == 401
        assert wrong.json()["error"]["code"] == "invalid_api_key"
        bearer = httpx.post(f"{mock.url}/v1/chat/completions", json=body, headers={"Authorization": "Bearer sk-right"})
        azure = httpx.post(f"{mock.url}/v1/chat/completions", json=body, headers={"api-key": "sk-right"})
        assert bearer.status_code == azure.status_code == 200
        assert mock.requests[1].headers["authorization"] == "Bearer sk-right"


def test_models_and_root(client: httpx.Client) -> None:
    assert client.get("/v1/models").json()["data"][0]["id"] == "gpt-mock"
    assert client.head("/").status_code == 200
    missing = client.post("/v1/embeddings", json={})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_real_claude_code_tools_are_accepted(client: httpx.Client) -> None:
    """The Claude Code tool list as a gateway would send it (names, JSON-schema objects)."""
    body = json.loads((FIXTURES / "2.1.197-turn1.json").read_text())
    tools = [
        {
            "type": "function",
            "function": {"name": t["name"], "description": t["description"], "parameters": t["input_schema"]},
        }
        for t in body["tools"]
    ]
    messages = [SYSTEM, {"role": "user", "content": "Create a file x containing y"}]
    answer = chat(client, messages, stream=True, tools=tools)
    assert only_call(answer)[0] == "Write"


# --- validation like a strict OpenAI server ---------------------------------------------------------------


def _call(call_id: str = "call_9", arguments: Any = "{}") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": "Write", "arguments": arguments}}


USER = {"role": "user", "content": "Create a file a containing b"}
INVALID: list[tuple[str, dict[str, Any], str | None, str]] = [
    (
        "tool message without a preceding tool_calls",
        {"messages": [USER, {"role": "tool", "tool_call_id": "call_1", "content": "x"}]},
        "messages.[1].role",
        "must be a response to a preceeding message with 'tool_calls'",
    ),
    (
        "tool message answering an unknown id",
        {
            "messages": [
                USER,
                {"role": "assistant", "content": None, "tool_calls": [_call("call_9")]},
                {"role": "tool", "tool_call_id": "toolu_other", "content": "x"},
            ]
        },
        "messages.[2].role",
        "must be a response to a preceeding message with 'tool_calls'",
    ),
    (
        "tool_calls left unanswered",
        {"messages": [USER, {"role": "assistant", "content": None, "tool_calls": [_call("call_9")]}, USER]},
        "messages.[2].role",
        "The following tool_call_ids did not have response messages: call_9",
    ),
    (
        "user message between the tool_calls and their results",
        {
            "messages": [
                USER,
                {"role": "assistant", "content": None, "tool_calls": [_call("call_9")]},
                USER,
                {"role": "tool", "tool_call_id": "call_9", "content": "x"},
            ]
        },
        "messages.[2].role",
        "did not have response messages: call_9",
    ),
    (
        "arguments as an object",
        {
            "messages": [
                USER,
                {"role": "assistant", "content": None, "tool_calls": [_call("call_9", {"a": 1})]},
                {"role": "tool", "tool_call_id": "call_9", "content": "x"},
            ]
        },
        "messages[1].tool_calls[0].function.arguments",
        "expected a string, but got an object instead",
    ),
    (
        "image in a tool message",
        {
            "messages": [
                USER,
                {"role": "assistant", "content": None, "tool_calls": [_call("call_9")]},
                {
                    "role": "tool",
                    "tool_call_id": "call_9",
                    "content": [{"type": "image_url", "image_url": {"url": PNG}}],
                },
            ]
        },
        "messages[2].content",
        "Image URLs are only allowed for messages with role 'user'",
    ),
    (
        "image that is not a data URL or http URL",
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "iVBORw0KGgo="}}]}]},
        "messages[0].content[0].image_url.url",
        "Expected a base64-encoded data URL",
    ),
    (
        "tool name with a dot",
        {"messages": [USER], "tools": [{"type": "function", "function": {"name": "mcp.read", "parameters": {}}}]},
        "tools[0].function.name",
        "does not match pattern",
    ),
    (
        "tool name longer than 64",
        {"messages": [USER], "tools": [{"type": "function", "function": {"name": "x" * 65, "parameters": {}}}]},
        "tools[0].function.name",
        "does not match pattern",
    ),
    (
        "parameters as a string",
        {"messages": [USER], "tools": [{"type": "function", "function": {"name": "Write", "parameters": "{}"}}]},
        "tools[0].function.parameters",
        "expected an object, but got a string instead",
    ),
    (
        "Anthropic-style tool",
        {"messages": [USER], "tools": [{"name": "Write", "input_schema": {"type": "object"}}]},
        "tools[0].function.name",
        "Missing required parameter",
    ),
    (
        "json_schema without a name",
        {"messages": [USER], "response_format": {"type": "json_schema", "json_schema": {"schema": {}}}},
        "response_format.json_schema.name",
        "Missing required parameter",
    ),
    ("empty messages", {"messages": []}, "messages", "empty array"),
    (
        "unknown role",
        {"messages": [{"role": "human", "content": "hi"}]},
        "messages[0].role",
        "Invalid value: 'human'",
    ),
]


@pytest.mark.parametrize(("case", "body", "param", "message"), INVALID, ids=[c[0] for c in INVALID])
def test_validation(
    client: httpx.Client, mock: MockOpenAIUpstream, case: str, body: Any, param: str, message: str
) -> None:
    response = client.post("/v1/chat/completions", json={"model": "gpt-test", **body})
    assert response.status_code == 400, case
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert message in error["message"]
    assert len(mock.errors) == 1 and message in mock.errors[0]
    mock.errors.clear()


def test_parallel_tool_results_are_valid(client: httpx.Client) -> None:
    messages: list[dict[str, Any]] = [
        USER,
        {"role": "assistant", "content": "", "tool_calls": [_call("call_a"), _call("call_b")]},
        {"role": "tool", "tool_call_id": "call_b", "content": "ok"},
        {"role": "tool", "tool_call_id": "call_a", "content": "ok"},
        {"role": "function", "name": "legacy", "content": "ignored"},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.invalid/x.png"}}]},
    ]
    assert chat(client, messages, stream=False).content == "DONE"


# --- raw scripted answers, hangs and disconnects -----------------------------------------------------------


def test_enqueue_sends_anything_raw(client: httpx.Client, mock: MockOpenAIUpstream) -> None:
    mock.enqueue(openai_error(429, "Rate limit reached", "requests", code="rate_limit_exceeded"))
    mock.enqueue(ScriptedResponse(body=b"not json", content_type="text/plain"))
    mock.enqueue(ScriptedResponse(chunks=[sse_data({"error": {"message": "boom"}}), sse_data("[DONE]")]))
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    limited = client.post("/v1/chat/completions", json=body)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "7"
    assert limited.json()["error"]["type"] == "requests"
    assert client.post("/v1/chat/completions", json=body).text == "not json"
    assert "boom" in client.post("/v1/chat/completions", json=body).text
    assert (
        client.post("/v1/chat/completions", json=body).json()["choices"][0]["message"]["content"] == "Hello from mock"
    )


def test_client_disconnect_mid_stream_is_recorded(mock: MockOpenAIUpstream) -> None:
    chunks = [sse_data({"choices": [{"index": 0, "delta": {"content": "x"}}]})] * 3
    mock.enqueue(ScriptedResponse(chunks=chunks, hang_after=1))
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    started = time.monotonic()
    with httpx.Client(timeout=10) as c, c.stream("POST", f"{mock.url}/v1/chat/completions", json=body) as response:
        first = next(response.iter_bytes())
        assert first.startswith(b"data: ")
    assert mock.wait_for_disconnect(5)
    assert mock.disconnects[0] - started < 5
