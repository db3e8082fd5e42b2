"""The mock OpenAI Responses API upstream, driven with httpx over real loopback HTTP."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.mocks.base import ScriptedResponse, sse_event
from tests.mocks.responses_upstream import MockResponsesUpstream

INSTRUCTIONS = "# Environment\nPrimary working directory: /tmp/proj\nPlatform: linux"
TOOLS = [
    {"type": "function", "name": name, "description": name, "parameters": {"type": "object"}, "strict": False}
    for name in ("Bash", "Edit", "Read", "Write")
]
PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\nmock").decode()


@dataclass
class Result:
    response: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def output(self) -> list[dict[str, Any]]:
        return list(self.response["output"])

    @property
    def text(self) -> str:
        return "".join(part["text"] for item in self.output if item["type"] == "message" for part in item["content"])

    def call(self) -> tuple[str, dict[str, Any]]:
        (item,) = [i for i in self.output if i["type"] == "function_call"]
        assert item["call_id"].startswith("call_") and item["id"].startswith("fc_")
        return item["name"], json.loads(item["arguments"])


@pytest.fixture
def mock() -> Iterator[MockResponsesUpstream]:
    with MockResponsesUpstream() as upstream:
        yield upstream
    assert upstream.errors == []


@pytest.fixture
def client(mock: MockResponsesUpstream) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mock.url, headers={"Authorization": "Bearer sk-test"}, timeout=10) as c:
        yield c


def parse_events(response: httpx.Response) -> Result:
    """Check the named-SSE framing and the documented event order; rebuild the output from the deltas."""
    assert response.headers["content-type"].startswith("text/event-stream")
    events: list[tuple[str, dict[str, Any]]] = []
    for frame in response.text.split("\n\n"):
        if not frame.strip():
            continue
        event_line, data_line = frame.split("\n")
        name = event_line.removeprefix("event: ")
        data = json.loads(data_line.removeprefix("data: "))
        assert data["type"] == name
        assert data["sequence_number"] == len(events)
        events.append((name, data))
    names = [name for name, _ in events]
    assert names[:2] == ["response.created", "response.in_progress"]
    assert names[-1] == "response.completed" and "[DONE]" not in response.text
    assert events[0][1]["response"]["status"] == "in_progress"
    final = events[-1][1]["response"]
    assert final["status"] == "completed"
    # Rebuild every output item from its deltas; it must equal the item in output_item.done and in the final response.
    rebuilt: dict[int, str] = {}
    for name, data in events:
        if name in ("response.output_text.delta", "response.function_call_arguments.delta"):
            rebuilt[data["output_index"]] = rebuilt.get(data["output_index"], "") + data["delta"]
        if name == "response.reasoning_summary_text.delta":
            rebuilt[data["output_index"]] = rebuilt.get(data["output_index"], "") + data["delta"]
        if name == "response.output_item.done":
            item = data["item"]
            assert item == final["output"][data["output_index"]]
            if item["type"] == "message":
                assert rebuilt[data["output_index"]] == item["content"][0]["text"]
            elif item["type"] == "function_call":
                assert rebuilt[data["output_index"]] == item["arguments"]
            else:
                assert rebuilt[data["output_index"]] == item["summary"][0]["text"]
    return Result(final, events)


def respond(client: httpx.Client, items: list[dict[str, Any]] | str, stream: bool, **extra: Any) -> Result:
    path = extra.pop("path", "/v1/responses")
    body = {"model": "gpt-test", "instructions": INSTRUCTIONS, "input": items, "tools": TOOLS, **extra}
    if stream:
        body["stream"] = True
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    if stream:
        return parse_events(response)
    data = response.json()
    assert data["object"] == "response" and data["status"] == "completed"
    return Result(data)


def feed_back(result: Result, output: Any) -> list[dict[str, Any]]:
    """The items a stateless client appends: the model's output items, then the function call's result."""
    (call,) = [i for i in result.output if i["type"] == "function_call"]
    return [*result.output, {"type": "function_call_output", "call_id": call["call_id"], "output": output}]


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


@pytest.mark.parametrize("stream", [False, True])
def test_create_file_two_turns(client: httpx.Client, mock: MockResponsesUpstream, stream: bool) -> None:
    items = [user("Create a file hello.txt containing hi")]
    first = respond(client, items, stream)
    assert first.call() == ("Write", {"file_path": "/tmp/proj/hello.txt", "content": "hi"})
    items += feed_back(first, "File created successfully at: /tmp/proj/hello.txt")
    done = respond(client, items, stream)
    assert done.text == "DONE"
    assert [i["type"] for i in done.output] == ["message"]
    assert len(mock.responses_requests) == 2


@pytest.mark.parametrize("stream", [False, True])
def test_run_command(client: httpx.Client, stream: bool) -> None:
    items = [user("Run the command: echo lynkr-$((6*7))")]
    first = respond(client, items, stream)
    assert first.call() == ("Bash", {"command": "echo lynkr-$((6*7))", "description": "run"})
    items += feed_back(first, "lynkr-42\n")
    assert respond(client, items, stream).text == "OUTPUT: lynkr-42"


@pytest.mark.parametrize("stream", [False, True])
def test_replace_three_turns(client: httpx.Client, stream: bool) -> None:
    items = [user("Replace alpha with beta in a.txt")]
    read = respond(client, items, stream)
    assert read.call() == ("Read", {"file_path": "/tmp/proj/a.txt"})
    items += feed_back(read, [{"type": "input_text", "text": "     1\talpha\n"}])
    edit = respond(client, items, stream)
    assert edit.call() == ("Edit", {"file_path": "/tmp/proj/a.txt", "old_string": "alpha", "new_string": "beta"})
    items += feed_back(edit, "updated")
    assert respond(client, items, stream).text == "DONE"


@pytest.mark.parametrize("where", ["output", "user message", "nowhere"])
def test_describe_image(client: httpx.Client, where: str) -> None:
    items = [user("Describe the image shot.png")]
    read = respond(client, items, stream=True)
    assert read.call() == ("Read", {"file_path": "/tmp/proj/shot.png"})
    image = {"type": "input_image", "image_url": PNG, "detail": "auto"}
    if where == "output":
        # function_call_output.output may be an array of input_text / input_image parts.
        items += feed_back(read, [{"type": "input_text", "text": "image:"}, image])
    else:
        items += feed_back(read, "[image]")
        if where == "user message":
            items.append({"type": "message", "role": "user", "content": [image]})
    assert respond(client, items, stream=True).text == ("NO IMAGE" if where == "nowhere" else "IMAGE SEEN")


@pytest.mark.parametrize("stream", [False, True])
def test_reasoning_summary(client: httpx.Client, stream: bool) -> None:
    result = respond(client, "What is 2+2?", stream, reasoning={"effort": "medium", "summary": "auto"})
    reasoning, message = result.output
    assert reasoning["type"] == "reasoning" and reasoning["id"].startswith("rs_")
    assert reasoning["summary"] == [{"type": "summary_text", "text": "thinking about it"}]
    assert "encrypted_content" not in reasoning
    assert message["content"][0]["text"] == "4"
    usage = result.response["usage"]
    assert usage["output_tokens_details"]["reasoning_tokens"] > 0
    if stream:
        names = [name for name, _ in result.events]
        assert names.index("response.reasoning_summary_text.delta") < names.index("response.output_text.delta")
        assert names.count("response.reasoning_summary_text.delta") > 1
        assert "response.reasoning_summary_part.added" in names and "response.reasoning_summary_text.done" in names
    plain = respond(client, "What is 2+2?", stream)
    assert [i["type"] for i in plain.output] == ["message"]


def test_encrypted_reasoning_round_trip_for_stateless_clients(client: httpx.Client) -> None:
    include = ["reasoning.encrypted_content"]
    first = respond(client, "What is 2+2?", False, reasoning={"effort": "low"}, include=include, store=False)
    reasoning = first.output[0]
    assert reasoning["encrypted_content"]
    # Echoing the reasoning item back (as store:false clients must) is accepted.
    again = respond(client, [user("What is 2+2?"), *first.output, user("And: what is 2+2?")], False, store=False)
    assert again.text == "4"


def test_stream_event_order_for_a_function_call(client: httpx.Client) -> None:
    result = respond(client, [user("Create a file a.txt containing a long enough text")], stream=True)
    names = [name for name, _ in result.events]
    assert names == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        *["response.function_call_arguments.delta"] * names.count("response.function_call_arguments.delta"),
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert names.count("response.function_call_arguments.delta") > 1
    added = result.events[2][1]["item"]
    assert added["type"] == "function_call" and added["arguments"] == "" and added["call_id"] and added["name"]


def test_text_event_order(client: httpx.Client) -> None:
    names = [name for name, _ in respond(client, "hi", stream=True).events]
    deltas = names.count("response.output_text.delta")
    assert deltas > 1
    assert names[2:] == [
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * deltas,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]


def test_usage_and_cached_tokens() -> None:
    with MockResponsesUpstream(cached_tokens=10_000) as mock, httpx.Client(base_url=mock.url) as c:
        result = respond(c, "hi", stream=True)
    usage = result.response["usage"]
    assert usage["input_tokens"] == len(mock.requests[0].raw) // 4
    assert usage["input_tokens_details"]["cached_tokens"] == usage["input_tokens"]  # capped at the input
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


def test_title_call_via_text_format(client: httpx.Client) -> None:
    fmt = {"type": "json_schema", "name": "title", "schema": {"type": "object"}, "strict": True}
    result = respond(client, "fix the login bug", False, text={"format": fmt})
    assert json.loads(result.text) == {"title": "Mock title"}


@pytest.mark.parametrize(
    "path", ["/v1/responses", "/openai/responses?api-version=2025-04-01-preview", "/openai/v1/responses"]
)
def test_paths_and_headers(mock: MockResponsesUpstream, path: str) -> None:
    with httpx.Client(base_url=mock.url, headers={"api-key": "azure-key"}, timeout=10) as c:
        assert respond(c, "What is 2+2?", False, path=path).text == "4"
    (request,) = mock.responses_requests
    assert request.path == path and request.headers["api-key"] == "azure-key"


def test_api_key_is_enforced_when_set() -> None:
    with MockResponsesUpstream(api_key="sk-right") as mock:
        body = {"model": "m", "input": "hi"}
        assert httpx.post(f"{mock.url}/v1/responses", json=body).status_code == 401
        ok = httpx.post(f"{mock.url}/v1/responses", json=body, headers={"Authorization": "Bearer sk-right"})
        assert ok.status_code == 200


def test_previous_response_id_continues_a_stored_response(client: httpx.Client, mock: MockResponsesUpstream) -> None:
    first = respond(client, [user("Create a file a.txt containing b")], False)
    (call,) = first.output
    follow = [{"type": "function_call_output", "call_id": call["call_id"], "output": "ok"}]
    second = respond(client, follow, True, previous_response_id=first.response["id"])
    assert second.text == "DONE"
    assert second.response["previous_response_id"] == first.response["id"]
    unstored = respond(client, "hi", False, store=False)
    assert unstored.response["id"] not in mock.stored


# --- validation like a strict server -----------------------------------------------------------------------


INVALID: list[tuple[str, dict[str, Any], str | None, str]] = [
    (
        "output for an unknown call_id",
        {"input": [user("x"), {"type": "function_call_output", "call_id": "call_404", "output": "ok"}]},
        "input",
        "No tool call found for function call output with call_id call_404.",
    ),
    (
        "output before its call",
        {
            "input": [
                {"type": "function_call_output", "call_id": "call_1", "output": "ok"},
                {"type": "function_call", "call_id": "call_1", "name": "Write", "arguments": "{}"},
            ]
        },
        "input",
        "No tool call found",
    ),
    (
        "arguments as an object",
        {"input": [{"type": "function_call", "call_id": "call_1", "name": "Write", "arguments": {"a": 1}}]},
        "input[0].arguments",
        "expected a string",
    ),
    (
        "Chat Completions style tool",
        {"input": "hi", "tools": [{"type": "function", "function": {"name": "Write", "parameters": {}}}]},
        "tools[0].name",
        "Missing required parameter",
    ),
    (
        "bad tool name",
        {"input": "hi", "tools": [{"type": "function", "name": "a b", "parameters": {}}]},
        "tools[0].name",
        "does not match pattern",
    ),
    (
        "json_schema without a name",
        {"input": "hi", "text": {"format": {"type": "json_schema", "schema": {}}}},
        "text.format.name",
        "Missing required parameter",
    ),
    (
        "Chat Completions style image part",
        {"input": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": PNG}}]}]},
        "input[0].content[0].type",
        "Invalid value: 'image_url'",
    ),
    (
        "unknown previous_response_id",
        {"input": "hi", "previous_response_id": "resp_nope"},
        "previous_response_id",
        "Previous response with id 'resp_nope' not found.",
    ),
    ("no input", {}, "input", "Missing required parameter: 'input'."),
]


@pytest.mark.parametrize(("case", "body", "param", "message"), INVALID, ids=[c[0] for c in INVALID])
def test_validation(
    client: httpx.Client, mock: MockResponsesUpstream, case: str, body: Any, param: str, message: str
) -> None:
    response = client.post("/v1/responses", json={"model": "gpt-test", **body})
    assert response.status_code == 400, case
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert message in error["message"]
    assert len(mock.errors) == 1 and message in mock.errors[0]
    mock.errors.clear()


def test_enqueue_raw(client: httpx.Client, mock: MockResponsesUpstream) -> None:
    failed = {"type": "response.failed", "response": {"status": "failed", "error": {"code": "server_error"}}}
    mock.enqueue(ScriptedResponse(chunks=[sse_event("response.failed", failed)]))
    raw = client.post("/v1/responses", json={"model": "m", "input": "hi", "stream": True})
    assert raw.text.startswith("event: response.failed\n")
    assert respond(client, "hi", False).text == "Hello from mock"
