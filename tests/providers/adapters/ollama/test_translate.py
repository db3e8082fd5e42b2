"""Anthropic Messages requests -> Ollama /api/chat requests (pure), on golden fixtures and rule by rule.

Ollama's request format: https://github.com/ollama/ollama/blob/main/docs/api.md "Generate a chat completion";
tool messages: docs/capabilities/tool-calling.mdx; think: docs/capabilities/thinking.mdx.
What Claude Code sends: shared/reference/claude-code-wire.md §3 and §8.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.wire.errors import InvalidRequestError
from providers.adapters.base import InboundContext
from providers.adapters.ollama.translate import build_body, build_request
from tests.providers.adapters.ollama.support import FIXTURES, provider, route

CLAUDE_CODE = Path(__file__).resolve().parents[3] / "fixtures" / "claude_code"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
WRITE = {
    "name": "Write",
    "description": "Write a file",
    "input_schema": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}},
        "required": ["file_path", "content"],
        "additionalProperties": False,
    },
}


def body(**changes: Any) -> dict[str, Any]:
    return {"model": "claude-opus-4-8", "max_tokens": 1000, "messages": [{"role": "user", "content": "hi"}], **changes}


def ollama(request: dict[str, Any], **provider_changes: Any) -> dict[str, Any]:
    return build_body(route(provider(**provider_changes)), request)


# --- golden fixtures ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["request_tools_history.json", "request_structured.json", "request_images.json"])
def test_golden_requests(name: str) -> None:
    fixture = orjson.loads((FIXTURES / name).read_bytes())
    out = build_body(route(upstream_model=fixture["upstream_model"]), fixture["anthropic"])
    assert out == fixture["ollama"]


@pytest.mark.parametrize("path", sorted(CLAUDE_CODE.glob("*.json")), ids=lambda p: p.name)
def test_claude_code_bodies_translate(path: Path) -> None:
    request = orjson.loads(path.read_bytes())
    config = provider(supports_thinking=True, context_window=32768, max_output_tokens=8192)
    upstream = build_request(route(config), request, InboundContext(request_id="req_1"))
    out = orjson.loads(upstream.body)
    assert upstream.url == "http://localhost:11434/api/chat"
    assert out["stream"] is True and out["think"] is True
    assert out["options"] == {"num_predict": 8192, "num_ctx": 32768}
    assert out["messages"][0]["role"] == "system" and "x-anthropic-billing-header" in out["messages"][0]["content"]
    # The mid-conversation system message stays in place, after the first user turn.
    assert [m["role"] for m in out["messages"][:3]] == ["system", "user", "system"]
    names = [t["function"]["name"] for t in out["tools"]]
    assert "Bash" in names and "DeferredToolPlaceholder" not in names
    assert all(set(t) == {"type", "function"} and t["type"] == "function" for t in out["tools"])
    if "turn2" in path.name:
        call = out["messages"][3]["tool_calls"][0]["function"]
        assert isinstance(call["arguments"], dict)
        tool = out["messages"][4]
        assert tool["role"] == "tool" and tool["tool_name"] == call["name"]
    assert ("x-request-id", "req_1") in upstream.headers


# --- URL, headers, transport ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("http://localhost:11434", "http://localhost:11434/api/chat"),
        ("http://localhost:11434/", "http://localhost:11434/api/chat"),
        ("http://ollama:11434/api", "http://ollama:11434/api/chat"),
        ("http://ollama:11434/api/chat", "http://ollama:11434/api/chat"),
        ("https://gw.example/ollama/api/chat/", "https://gw.example/ollama/api/chat"),
    ],
)
def test_url(base: str, url: str) -> None:
    assert build_request(route(provider(base_url=base)), body(), InboundContext()).url == url


def test_request_headers_and_timeouts() -> None:
    config = provider(credential="ollama-key", auth_style="bearer", options={"extra_headers": {"X-Tenant": "a"}})
    upstream = build_request(route(config), body(), InboundContext())
    assert upstream.method == "POST"
    assert upstream.headers == (
        ("content-type", "application/json"),
        ("accept", "application/x-ndjson"),
        ("authorization", "Bearer ollama-key"),
        ("x-tenant", "a"),
    )
    assert (upstream.connect_timeout, upstream.read_timeout) == (3.0, 120.0)
    assert build_request(route(), body(), InboundContext()).headers[2:] == ()


# --- messages ------------------------------------------------------------------------------------------------------


def test_system_string_and_blocks_and_mid_conversation_system() -> None:
    blocks = [{"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}}, {"type": "text", "text": "b"}]
    request = body(
        system=blocks,
        messages=[
            {"role": "user", "content": "q"},
            {"role": "system", "content": [{"type": "text", "text": "agents"}], "output_config": {"effort": "low"}},
            {"role": "assistant", "content": "ok"},
        ],
    )
    assert ollama(request)["messages"] == [
        {"role": "system", "content": "a\n\nb"},
        {"role": "user", "content": "q"},
        {"role": "system", "content": "agents"},
        {"role": "assistant", "content": "ok"},
    ]
    assert ollama(body(system="s"))["messages"][0] == {"role": "system", "content": "s"}
    assert ollama(body(system=""))["messages"] == [{"role": "user", "content": "hi"}]


def test_user_text_images_documents_and_skipped_blocks() -> None:
    content = [
        {"type": "text", "text": "one"},
        IMAGE,
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc"}},
        {"type": "thinking", "thinking": "x", "signature": "s"},
        {"type": "redacted_thinking", "data": "x"},
        {"type": "text", "text": "two"},
    ]
    assert ollama(body(messages=[{"role": "user", "content": content}]))["messages"] == [
        {"role": "user", "content": "one\n\ndoc\n\ntwo", "images": [PNG]}
    ]
    # A message with nothing Ollama can take is left out rather than sent empty.
    assert ollama(body(messages=[{"role": "user", "content": ""}]))["messages"] == []


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}, "messages.0.content.1: only base64"),
        ({"type": "document", "source": {"type": "base64", "data": "JVBER"}}, "messages.0.content.1: provider"),
        ({"type": "search_result", "source": "x"}, "messages.0.content.1: block type 'search_result'"),
    ],
)
def test_user_block_errors_name_the_block(block: dict[str, Any], message: str) -> None:
    request = body(messages=[{"role": "user", "content": [{"type": "text", "text": "look"}, block]}])
    with pytest.raises(InvalidRequestError, match=message):
        ollama(request)


def test_images_for_a_text_only_model_are_a_400_naming_the_block() -> None:
    request = body(messages=[{"role": "user", "content": [{"type": "text", "text": "see"}, IMAGE]}])
    with pytest.raises(InvalidRequestError, match=r"messages\.0\.content\.1: provider 'ollama' does not accept images"):
        ollama(request, supports_images=False)


def _tool_turns(result: dict[str, Any], *extra: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "write it"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "plan", "signature": "lynkr1.x"},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "text", "text": "Writing."},
                {"type": "tool_use", "id": "toolu_a", "name": "Write", "input": {"file_path": "/f", "content": "x"}},
                {"type": "tool_use", "id": "toolu_b", "name": "mcp__srv__read", "input": None},
            ],
        },
        {"role": "user", "content": [result, *extra]},
    ]


def test_assistant_turn_and_tool_results_in_order() -> None:
    results = [
        {"type": "tool_result", "tool_use_id": "toolu_b", "content": [{"type": "text", "text": "data"}]},
        {"type": "text", "text": "continue"},
    ]
    out = ollama(
        body(messages=_tool_turns({"type": "tool_result", "tool_use_id": "toolu_a", "content": "ok"}, *results))
    )
    assert out["messages"][1:] == [
        {
            "role": "assistant",
            "content": "Writing.",
            "thinking": "plan",
            "tool_calls": [
                {
                    "type": "function",
                    "function": {"index": 0, "name": "Write", "arguments": {"file_path": "/f", "content": "x"}},
                },
                {"type": "function", "function": {"index": 1, "name": "mcp__srv__read", "arguments": {}}},
            ],
        },
        {"role": "tool", "content": "ok", "tool_name": "Write"},
        {"role": "tool", "content": "data", "tool_name": "mcp__srv__read"},
        {"role": "user", "content": "continue"},
    ]


def test_tool_result_errors_unknown_ids_and_images() -> None:
    result = {
        "type": "tool_result",
        "tool_use_id": "toolu_a",
        "is_error": True,
        "content": [{"type": "text", "text": "shot"}, IMAGE],
    }
    unknown = {"type": "tool_result", "tool_use_id": "toolu_zz", "content": "late"}
    out = ollama(body(messages=_tool_turns(result, unknown)))
    assert out["messages"][2:] == [
        {"role": "tool", "content": "[tool error] shot", "tool_name": "Write"},
        {"role": "tool", "content": "late"},  # no tool_use with that id earlier: no name to give
        {"role": "user", "content": "[images returned by tool call toolu_a]", "images": [PNG]},
    ]
    with pytest.raises(InvalidRequestError, match=r"messages\.2\.content\.0: provider 'ollama' does not accept images"):
        ollama(body(messages=_tool_turns(result)), supports_images=False)


def test_assistant_plain_text_and_unsupported_blocks() -> None:
    turns = [{"role": "user", "content": "q"}, {"role": "assistant", "content": [{"type": "server_tool_use"}]}]
    with pytest.raises(InvalidRequestError, match=r"messages\.1\.content\.0: block type 'server_tool_use'"):
        ollama(body(messages=turns))
    with pytest.raises(InvalidRequestError, match=r"messages\.0\.role: 'tool'"):
        ollama(body(messages=[{"role": "tool", "content": "x"}]))


# --- tools ---------------------------------------------------------------------------------------------------------


def test_tools_whole_or_strict_and_descriptions() -> None:
    bare = {"name": "Ping", "input_schema": None}
    out = ollama(body(tools=[WRITE, bare]))
    assert out["tools"] == [
        {
            "type": "function",
            "function": {"name": "Write", "parameters": WRITE["input_schema"], "description": "Write a file"},
        },
        {"type": "function", "function": {"name": "Ping", "parameters": {"type": "object", "properties": {}}}},
    ]
    strict = ollama(body(tools=[WRITE]), options={"strict_schema": True})["tools"][0]["function"]["parameters"]
    assert "$schema" not in strict and strict["properties"] == WRITE["input_schema"]["properties"]


def test_tool_choice() -> None:
    other = {**WRITE, "name": "Read"}
    assert "tools" not in ollama(body(tools=[WRITE], tool_choice={"type": "none"}))
    assert len(ollama(body(tools=[WRITE, other], tool_choice={"type": "auto"}))["tools"]) == 2
    assert len(ollama(body(tools=[WRITE, other], tool_choice={"type": "any"}))["tools"]) == 2
    only = ollama(body(tools=[WRITE, other], tool_choice={"type": "tool", "name": "Read"}))["tools"]
    assert [t["function"]["name"] for t in only] == ["Read"]
    assert len(ollama(body(tools=[WRITE], tool_choice="auto"))["tools"]) == 1  # not an object: no choice
    with pytest.raises(InvalidRequestError, match=r"tool_choice\.name: 'Nope'"):
        ollama(body(tools=[WRITE], tool_choice={"type": "tool", "name": "Nope"}))
    with pytest.raises(InvalidRequestError, match=r"tool_choice\.type: 'sometimes'"):
        ollama(body(tools=[WRITE], tool_choice={"type": "sometimes"}))


def test_tool_errors() -> None:
    with pytest.raises(InvalidRequestError, match="server tool 'web_search_20250305'"):
        ollama(body(tools=[{"type": "web_search_20250305", "name": "web_search"}]))
    with pytest.raises(InvalidRequestError, match="does not support tools"):
        ollama(body(tools=[WRITE]), supports_tools=False)
    # No tools, no complaint from a provider without tool support.
    assert "tools" not in ollama(body(), supports_tools=False)


def test_deferred_tools_are_left_out() -> None:
    deferred = {**WRITE, "name": "Later", "defer_loading": True}
    assert [t["function"]["name"] for t in ollama(body(tools=[WRITE, deferred]))["tools"]] == ["Write"]


# --- thinking ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "options", "think"),
    [
        ({"thinking": {"type": "adaptive"}, "output_config": {"effort": "high"}}, {}, True),
        ({"thinking": {"type": "adaptive"}, "output_config": {"effort": "max"}}, {"think_levels": True}, "high"),
        ({"thinking": {"type": "enabled", "budget_tokens": 2000}}, {"think_levels": True}, "low"),
        ({"thinking": {"type": "disabled"}}, {"think_levels": True}, False),
        ({}, {}, False),
    ],
)
def test_think_for_thinking_models(changes: dict[str, Any], options: dict[str, Any], think: bool | str) -> None:
    assert ollama(body(**changes), supports_thinking=True, options=options)["think"] == think


def test_no_think_field_for_models_without_thinking() -> None:
    assert "think" not in ollama(body(thinking={"type": "adaptive"}, output_config={"effort": "high"}))
    assert "think" not in ollama(body(thinking={"type": "disabled"}))


# --- options, format, keep_alive -----------------------------------------------------------------------------------


def test_options() -> None:
    request = body(max_tokens=64000, temperature=0.2, top_p=0.9, top_k=40, stop_sequences=["END"])
    assert ollama(request, max_output_tokens=4096, context_window=65536)["options"] == {
        "num_predict": 4096,
        "num_ctx": 65536,
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 40,
        "stop": ["END"],
    }
    assert ollama(body(), context_window=65536, options={"num_ctx": 16384})["options"]["num_ctx"] == 16384
    assert ollama(body(max_tokens=100), max_output_tokens=4096)["options"] == {"num_predict": 100}


def test_format_and_keep_alive() -> None:
    schema = {"type": "object", "properties": {"title": {"type": "string"}}}
    assert ollama(body(output_config={"format": {"type": "json_schema", "schema": schema}}))["format"] == schema
    assert ollama(body(output_config={"format": {"type": "json_schema"}}))["format"] == "json"
    assert "format" not in ollama(body(output_config={"format": {"type": "text"}}))
    assert "format" not in ollama(body(output_config={"effort": "low"}))
    assert ollama(body(), options={"keep_alive": "30m"})["keep_alive"] == "30m"
    assert ollama(body(), options={"keep_alive": 0})["keep_alive"] == 0
    assert "keep_alive" not in ollama(body())


def test_translation_does_not_modify_the_request() -> None:
    request = orjson.loads((CLAUDE_CODE / "2.1.332-turn2.json").read_bytes())
    before = copy.deepcopy(request)
    build_body(route(provider(supports_thinking=True)), request)
    assert request == before
