"""The mock Ollama upstream, driven with httpx over real loopback HTTP."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.mocks.base import ScriptedResponse, ndjson_line
from tests.mocks.ollama_upstream import NDJSON, MockOllamaUpstream, ollama_error

MODELS = {
    "qwen3:8b": {"context_length": 40960, "capabilities": ["completion", "tools", "thinking"]},
    "llava": {"context_length": 4096, "capabilities": ["completion", "tools", "vision"], "architecture": "llama"},
    "tiny:1b": {"context_length": 2048, "capabilities": ["completion"]},
}
SYSTEM = {"role": "system", "content": "# Environment\nPrimary working directory: /tmp/proj\nPlatform: linux"}
TOOLS = [
    {"type": "function", "function": {"name": name, "description": name, "parameters": {"type": "object"}}}
    for name in ("Bash", "Edit", "Read", "Write")
]
IMAGE = base64.b64encode(b"\x89PNG\r\n\x1a\nmock").decode()


@dataclass
class Answer:
    content: str = ""
    thinking: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, Any] = field(default_factory=dict)
    lines: list[dict[str, Any]] = field(default_factory=list)

    def message(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = self.tool_calls
        return out

    def call(self) -> tuple[str, dict[str, Any]]:
        (call,) = self.tool_calls
        arguments = call["function"]["arguments"]
        assert isinstance(arguments, dict), "Ollama tool arguments are an object, not a string"
        return call["function"]["name"], arguments


@pytest.fixture
def mock() -> Iterator[MockOllamaUpstream]:
    with MockOllamaUpstream(models=MODELS) as upstream:
        yield upstream
    assert upstream.errors == []


@pytest.fixture
def client(mock: MockOllamaUpstream) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mock.url, timeout=10) as c:
        yield c


def chat(client: httpx.Client, messages: list[dict[str, Any]], stream: bool, **extra: Any) -> Answer:
    body: dict[str, Any] = {"model": "qwen3:8b", "messages": messages, "tools": TOOLS, **extra}
    if not stream:
        body["stream"] = False  # streaming is Ollama's default: the key is simply left out
    response = client.post("/api/chat", json=body)
    assert response.status_code == 200, response.text
    if not stream:
        assert response.headers["content-type"].startswith("application/json")
        data = response.json()
        message = data["message"]
        return Answer(message["content"], message.get("thinking", ""), message.get("tool_calls", []), data)
    assert response.headers["content-type"] == NDJSON
    assert response.text.endswith("\n")
    lines = [json.loads(line) for line in response.text.splitlines()]
    answer = Answer(lines=lines, final=lines[-1])
    assert [line["done"] for line in lines] == [False] * (len(lines) - 1) + [True]
    for line in lines[:-1]:
        message = line["message"]
        assert message["role"] == "assistant"
        answer.content += message["content"]
        answer.thinking += message.get("thinking", "")
        answer.tool_calls += message.get("tool_calls", [])
    assert lines[-1]["message"] == {"role": "assistant", "content": ""}
    return answer


def tool_result(answer: Answer, content: str, **extra: Any) -> list[dict[str, Any]]:
    name = answer.tool_calls[0]["function"]["name"]
    return [answer.message(), {"role": "tool", "content": content, "tool_name": name, **extra}]


def test_root_tags_show_version(client: httpx.Client) -> None:
    root = client.get("/")
    assert (root.status_code, root.text) == (200, "Ollama is running")
    assert client.head("/").status_code == 200
    tags = client.get("/api/tags").json()["models"]
    assert [m["name"] for m in tags] == ["qwen3:8b", "llava:latest", "tiny:1b"]
    assert all(m["model"] == m["name"] and m["details"]["format"] == "gguf" for m in tags)
    show = client.post("/api/show", json={"model": "qwen3:8b"}).json()
    assert show["model_info"]["general.architecture"] == "qwen3"
    assert show["model_info"]["qwen3.context_length"] == 40960
    assert show["capabilities"] == ["completion", "tools", "thinking"]
    llava = client.post("/api/show", json={"name": "llava:latest"}).json()  # legacy "name" key, explicit tag
    assert llava["model_info"]["llama.context_length"] == 4096
    assert "vision" in llava["capabilities"]
    assert client.get("/api/version").json()["version"]
    assert client.get("/api/ps").json() == {"models": []}
    assert client.get("/v1/nothing").status_code == 404


def test_unknown_model(client: httpx.Client) -> None:
    show = client.post("/api/show", json={"model": "nope:7b"})
    assert (show.status_code, show.json()) == (404, {"error": "model 'nope:7b' not found"})
    chat_response = client.post("/api/chat", json={"model": "nope", "messages": [{"role": "user", "content": "hi"}]})
    assert (chat_response.status_code, chat_response.json()) == (404, {"error": "model 'nope' not found"})


@pytest.mark.parametrize("stream", [True, False])
def test_create_file_two_turns(client: httpx.Client, mock: MockOllamaUpstream, stream: bool) -> None:
    messages: list[dict[str, Any]] = [SYSTEM, {"role": "user", "content": "Create a file hello.txt containing hi"}]
    first = chat(client, messages, stream)
    assert first.call() == ("Write", {"file_path": "/tmp/proj/hello.txt", "content": "hi"})
    assert "id" not in first.tool_calls[0]  # the documented shape has no call id
    assert first.final["done_reason"] == "stop"
    messages += tool_result(first, "File created successfully at: /tmp/proj/hello.txt")
    done = chat(client, messages, stream)
    assert (done.content, done.tool_calls) == ("DONE", [])
    assert len(mock.chat_requests) == 2


@pytest.mark.parametrize("stream", [True, False])
def test_run_command(client: httpx.Client, stream: bool) -> None:
    messages: list[dict[str, Any]] = [SYSTEM, {"role": "user", "content": "Run the command: echo lynkr-$((6*7))"}]
    first = chat(client, messages, stream)
    assert first.call() == ("Bash", {"command": "echo lynkr-$((6*7))", "description": "run"})
    # Older clients send tool results without tool_name: matched by position.
    messages += [first.message(), {"role": "tool", "content": "lynkr-42\n"}]
    assert chat(client, messages, stream).content == "OUTPUT: lynkr-42"


@pytest.mark.parametrize("stream", [True, False])
def test_replace_three_turns(client: httpx.Client, stream: bool) -> None:
    messages: list[dict[str, Any]] = [SYSTEM, {"role": "user", "content": "Replace alpha with beta in a.txt"}]
    read = chat(client, messages, stream)
    assert read.call() == ("Read", {"file_path": "/tmp/proj/a.txt"})
    messages += tool_result(read, "     1\talpha\n")
    edit = chat(client, messages, stream)
    assert edit.call() == ("Edit", {"file_path": "/tmp/proj/a.txt", "old_string": "alpha", "new_string": "beta"})
    messages += tool_result(edit, "updated")
    assert chat(client, messages, stream).content == "DONE"


@pytest.mark.parametrize(
    ("model", "where", "expected"),
    [
        ("llava", "tool", "IMAGE SEEN"),
        ("llava", "user", "IMAGE SEEN"),
        ("llava", None, "NO IMAGE"),
        ("qwen3:8b", "tool", "NO IMAGE"),  # no "vision" capability: images are dropped
    ],
)
def test_describe_image(client: httpx.Client, model: str, where: str | None, expected: str) -> None:
    messages: list[dict[str, Any]] = [SYSTEM, {"role": "user", "content": "Describe the image shot.png"}]
    read = chat(client, messages, True, model=model)
    assert read.call() == ("Read", {"file_path": "/tmp/proj/shot.png"})
    messages += tool_result(read, "[image]", **({"images": [IMAGE]} if where == "tool" else {}))
    if where == "user":
        messages.append({"role": "user", "content": "", "images": [IMAGE]})
    assert chat(client, messages, True, model=model).content == expected


@pytest.mark.parametrize("stream", [True, False])
def test_think_adds_thinking(client: httpx.Client, stream: bool) -> None:
    answer = chat(client, [{"role": "user", "content": "What is 2+2?"}], stream, think=True)
    assert (answer.content, answer.thinking) == ("4", "thinking about it")
    if stream:
        thinking_lines = [line for line in answer.lines if line["message"].get("thinking")]
        assert len(thinking_lines) > 1 and all(line["message"]["content"] == "" for line in thinking_lines)
    final = answer.final
    assert final["done"] is True and final["done_reason"] == "stop"
    assert final["prompt_eval_count"] > 0 and final["eval_count"] > 0
    assert chat(client, [{"role": "user", "content": "What is 2+2?"}], stream, think="high").thinking
    assert chat(client, [{"role": "user", "content": "What is 2+2?"}], stream, think=False).thinking == ""


def test_text_streams_in_several_lines(client: httpx.Client) -> None:
    answer = chat(client, [{"role": "user", "content": "hello"}], True)
    assert answer.content == "Hello from mock" and len(answer.lines) > 2


def test_tool_call_ids_option() -> None:
    with MockOllamaUpstream(tool_call_ids=True) as mock, httpx.Client(base_url=mock.url) as c:
        answer = chat(c, [{"role": "user", "content": "Create a file a containing b"}], True)
    assert answer.tool_calls[0]["id"].startswith("call_")
    assert answer.tool_calls[0]["function"]["index"] == 0


def test_format_gives_the_title(client: httpx.Client) -> None:
    schema = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
    answer = chat(client, [{"role": "user", "content": "fix the bug"}], False, format=schema, tools=[])
    assert json.loads(answer.content) == {"title": "Mock title"}


def test_empty_messages_load_the_model(client: httpx.Client) -> None:
    loaded = client.post("/api/chat", json={"model": "qwen3:8b", "messages": [], "stream": False}).json()
    assert (loaded["done"], loaded["done_reason"]) == (True, "load")


def test_default_models() -> None:
    with MockOllamaUpstream() as mock:
        show = httpx.post(f"{mock.url}/api/show", json={"model": "qwen3:8b"}).json()
    assert show["model_info"]["qwen3.context_length"] == 40960


INVALID: list[tuple[str, dict[str, Any], str]] = [
    (
        "content as an array of parts",
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]},
        "cannot unmarshal array into Go struct field Message.messages.content of type string",
    ),
    (
        "arguments as a JSON string",
        {
            "messages": [
                {"role": "user", "content": "hi"},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [{"function": {"name": "Write", "arguments": "{}"}}],
                },
            ]
        },
        "cannot unmarshal string into Go struct field ToolCallFunction.messages.tool_calls.function.arguments",
    ),
    (
        "image as a data URL",
        {
            "model": "llava",
            "messages": [{"role": "user", "content": "x", "images": [f"data:image/png;base64,{IMAGE}"]}],
        },
        "illegal base64 data in messages[0].images",
    ),
    (
        "tools for a model without the tools capability",
        {"model": "tiny:1b", "messages": [{"role": "user", "content": "hi"}], "tools": TOOLS},
        "registry.ollama.ai/library/tiny:1b does not support tools",
    ),
    (
        "think for a model without the thinking capability",
        {"model": "llava", "messages": [{"role": "user", "content": "hi"}], "think": True},
        '"llava" does not support thinking',
    ),
    ("unknown role", {"messages": [{"role": "developer", "content": "hi"}]}, "invalid role: developer"),
]


@pytest.mark.parametrize(("case", "body", "message"), INVALID, ids=[c[0] for c in INVALID])
def test_validation(client: httpx.Client, mock: MockOllamaUpstream, case: str, body: Any, message: str) -> None:
    response = client.post("/api/chat", json={"model": "qwen3:8b", "stream": False, **body})
    assert response.status_code == 400, case
    assert message in response.json()["error"]
    assert len(mock.errors) == 1 and message in mock.errors[0]
    mock.errors.clear()


def test_enqueue_raw_and_mid_stream_error(client: httpx.Client, mock: MockOllamaUpstream) -> None:
    mock.enqueue(ollama_error(500, "llama runner process has terminated"))
    line = {"model": "qwen3:8b", "message": {"role": "assistant", "content": "par"}, "done": False}
    mock.enqueue(ScriptedResponse(chunks=[ndjson_line(line), ndjson_line({"error": "boom"})], content_type=NDJSON))
    body = {"model": "qwen3:8b", "messages": [{"role": "user", "content": "hi"}]}
    failed = client.post("/api/chat", json=body)
    assert (failed.status_code, failed.json()) == (500, {"error": "llama runner process has terminated"})
    assert [json.loads(x) for x in client.post("/api/chat", json=body).text.splitlines()][-1] == {"error": "boom"}


def test_client_disconnect_while_stalled(mock: MockOllamaUpstream) -> None:
    line = ndjson_line({"model": "qwen3:8b", "message": {"role": "assistant", "content": "x"}, "done": False})
    mock.enqueue(ScriptedResponse(chunks=[line, line], content_type=NDJSON, hang_after=1, hang_keepalive=None))
    body = {"model": "qwen3:8b", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(timeout=10) as c, c.stream("POST", f"{mock.url}/api/chat", json=body) as response:
        assert json.loads(next(response.iter_lines()))["done"] is False
    assert mock.wait_for_disconnect(5)
