"""Anthropic Messages requests -> OpenAI Responses requests (pure), on golden fixtures and rule by rule.

Request shapes: https://platform.openai.com/docs/api-reference/responses/create; what Claude Code sends:
shared/reference/claude-code-wire.md §3 and §8 (the bodies in tests/fixtures/claude_code).
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.wire.errors import InvalidRequestError
from providers.adapters.common.content import tool_result_split
from providers.adapters.common.toolnames import toolname_encode
from providers.adapters.openai_responses.translate import build_body, build_request

from ._helpers import (
    INBOUND,
    SECRET,
    Json,
    build,
    fixture,
    provider,
    request_body,
    route,
    sig,
    text_block,
    user_turn,
)

CLAUDE_CODE = Path(__file__).parents[3] / "fixtures" / "claude_code"
RS_ID = "rs_6806bfca0b2481918a5748308061a2600d3ce51bdffd5476"
ENC = "gAAAAABoBr_KxHVnYMlPb2i8Aly"


# --- golden requests ------------------------------------------------------------------------------------------


def test_golden_tool_use_request() -> None:
    golden = orjson.loads(fixture("request_tool_use.json"))
    assert (
        build_body(route(provider(supports_thinking=False), "gpt-4.1"), golden["anthropic"], SECRET)
        == golden["responses"]
    )


def test_golden_reasoning_request_restores_the_reasoning_item() -> None:
    golden = orjson.loads(fixture("request_reasoning.json"))
    body = golden["anthropic"]
    body["messages"][1]["content"][0]["signature"] = sig(k="responses", id=RS_ID, enc=ENC)
    expected = golden["responses"]
    expected["user"] = hashlib.sha256(b"8fdc859b").hexdigest()[:32]
    expected["prompt_cache_key"] = hashlib.sha256(b"14b17683").hexdigest()[:32]
    out = build_body(route(provider(options={"prompt_cache_key": True}), "o4-mini"), body, SECRET)
    assert out == expected
    assert list(out) == list(expected)  # the key order too: model, instructions, input, ...


# --- Claude Code's real bodies --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in CLAUDE_CODE.glob("*.json")))
def test_claude_code_bodies_translate(name: str) -> None:
    body = orjson.loads((CLAUDE_CODE / name).read_bytes())
    original = copy.deepcopy(body)
    out = build(body)
    assert body == original  # the inbound body is not modified
    orjson.dumps(out)
    assert out["instructions"].startswith("x-anthropic-billing-header")
    assert out["store"] is False and out["stream"] is True
    assert out["max_output_tokens"] == body["max_tokens"]
    assert out["reasoning"] == {"effort": body["output_config"]["effort"], "summary": "auto"}
    assert out["include"] == ["reasoning.encrypted_content"]
    assert len(out["user"]) == 32 and "prompt_cache_key" not in out
    declared = [t["name"] for t in body["tools"] if not t.get("defer_loading")]
    assert [t["name"] for t in out["tools"]] == declared
    assert all(t["type"] == "function" and t["strict"] is False for t in out["tools"])
    # The mid-conversation system message stays in place, as a developer message.
    roles = [item.get("role", item["type"]) for item in out["input"]]
    assert roles[:2] == ["user", "developer"]
    if name.endswith("turn2.json"):
        assert roles[2:] == ["function_call", "function_call_output"]
        tool_use = body["messages"][2]["content"][0]
        call, output = out["input"][2], out["input"][3]
        assert call["call_id"] == output["call_id"] == tool_use["id"]
        assert orjson.loads(call["arguments"]) == tool_use["input"]
        assert output["output"] == tool_result_split(body["messages"][3]["content"][0], "x")[0]


# --- tools and tool_choice ------------------------------------------------------------------------------------

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {"n": {"type": "integer", "maximum": 9007199254740991, "format": "int64"}},
    "additionalProperties": False,
}


def test_tools_are_flat_functions_with_the_schema_whole() -> None:
    tools = [
        {"name": "count", "description": "Count.", "input_schema": SCHEMA},
        {"name": "bare", "type": "custom", "input_schema": {"type": "object"}},
        {"name": "no_schema"},
    ]
    out = build(request_body(tools=tools))["tools"]
    assert out == [
        {"type": "function", "name": "count", "description": "Count.", "parameters": SCHEMA, "strict": False},
        {"type": "function", "name": "bare", "parameters": {"type": "object"}, "strict": False},
        {"type": "function", "name": "no_schema", "parameters": {"type": "object", "properties": {}}, "strict": False},
    ]


def test_strict_schema_option_cleans_the_schema() -> None:
    (tool,) = build(request_body(tools=[{"name": "count", "input_schema": SCHEMA}]), options={"strict_schema": True})[
        "tools"
    ]
    assert tool["parameters"] == {
        "type": "object",
        "properties": {"n": {"type": "integer"}},
        "additionalProperties": False,
    }


def test_tool_names_are_encoded() -> None:
    name = "mcp__server__tool.with.dots"
    (tool,) = build(request_body(tools=[{"name": name, "input_schema": {"type": "object"}}]))["tools"]
    assert tool["name"] == toolname_encode(name) != name


def test_deferred_tools_and_tool_search_results() -> None:
    search_result = (
        '<functions><function>{"name": "Revealed", "description": "r", "parameters": {"type": "object"}}'
        "</function></functions>"
    )
    tools = [
        {"name": "ToolSearch", "input_schema": {"type": "object"}},
        {"name": "Hidden", "defer_loading": True, "input_schema": {"type": "object"}},
    ]
    messages = [user_turn({"type": "tool_result", "tool_use_id": "t", "content": search_result})]
    out = build(request_body(messages, tools=tools))["tools"]
    assert [t["name"] for t in out] == ["ToolSearch", "Revealed"]


def test_server_tools_are_refused() -> None:
    with pytest.raises(InvalidRequestError, match="server tool 'web_search_20250305'"):
        build(request_body(tools=[{"type": "web_search_20250305", "name": "web_search"}]))


def test_tools_refused_when_the_provider_takes_none() -> None:
    with pytest.raises(InvalidRequestError, match="does not support tools"):
        build(request_body(tools=[{"name": "f", "input_schema": {"type": "object"}}]), supports_tools=False)


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, {"tool_choice": "auto"}),
        ({"type": "any"}, {"tool_choice": "required"}),
        ({"type": "tool", "name": "get_weather"}, {"tool_choice": {"type": "function", "name": "get_weather"}}),
        ({"type": "none"}, {"tool_choice": "none"}),
        ({"type": "auto", "disable_parallel_tool_use": True}, {"tool_choice": "auto", "parallel_tool_calls": False}),
        ({"type": "any", "disable_parallel_tool_use": True}, {"tool_choice": "required", "parallel_tool_calls": False}),
        (
            {"type": "tool", "name": "a.b", "disable_parallel_tool_use": True},
            {"tool_choice": {"type": "function", "name": toolname_encode("a.b")}, "parallel_tool_calls": False},
        ),
        ({"type": "none", "disable_parallel_tool_use": True}, {"tool_choice": "none"}),
        (None, {}),
        ("auto", {}),
    ],
)
def test_tool_choice(choice: Any, expected: Json) -> None:
    out = build(request_body(tools=[{"name": "get_weather", "input_schema": {"type": "object"}}], tool_choice=choice))
    assert {k: out[k] for k in ("tool_choice", "parallel_tool_calls") if k in out} == expected


def test_unknown_tool_choice_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match=r"tool_choice\.type: 'sometimes'"):
        build(request_body(tools=[{"name": "f", "input_schema": {}}], tool_choice={"type": "sometimes"}))


def test_no_tools_means_no_tool_choice() -> None:
    out = build(request_body(tool_choice={"type": "any"}))
    assert "tools" not in out and "tool_choice" not in out


# --- thinking, format, sampling, limits, user -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "effort"),
    [
        ({"thinking": {"type": "adaptive"}, "output_config": {"effort": "high"}}, "high"),
        ({"thinking": {"type": "adaptive"}}, "medium"),
        ({"thinking": {"type": "enabled", "budget_tokens": 31999}}, "high"),
        ({"thinking": {"type": "enabled", "budget_tokens": 2048}}, "low"),
        ({"thinking": {"type": "disabled"}, "output_config": {"effort": "high"}}, None),
        ({}, None),
    ],
)
def test_reasoning_follows_the_thinking_settings(fields: Json, effort: str | None) -> None:
    out = build(request_body(**fields))
    assert out["store"] is False
    if effort is None:
        assert "reasoning" not in out and "include" not in out
    else:
        assert out["reasoning"] == {"effort": effort, "summary": "auto"}
        assert out["include"] == ["reasoning.encrypted_content"]


def test_no_reasoning_for_a_provider_without_thinking() -> None:
    out = build(request_body(thinking={"type": "adaptive"}, output_config={"effort": "high"}), supports_thinking=False)
    assert "reasoning" not in out and "include" not in out
    assert out["store"] is False


def test_output_format_json_schema() -> None:
    schema = {
        "type": "object",
        "properties": {"title": {"type": "string"}},
        "required": ["title"],
        "additionalProperties": False,
    }
    out = build(request_body(output_config={"effort": "high", "format": {"type": "json_schema", "schema": schema}}))
    assert out["text"] == {"format": {"type": "json_schema", "name": "output", "schema": schema, "strict": False}}
    assert build(request_body(output_config={"format": {"type": "json_schema"}}))["text"]["format"]["schema"] == {}
    assert "text" not in build(request_body(output_config={"format": {"type": "text"}}))
    assert "text" not in build(request_body(output_config={"format": "json"}))


@pytest.mark.parametrize(
    ("max_tokens", "limit", "expected"),
    [(64000, None, 64000), (64000, 32768, 32768), (1000, 32768, 1000), (1, None, 16)],
)
def test_max_output_tokens(max_tokens: int, limit: int | None, expected: int) -> None:
    assert build({**request_body(), "max_tokens": max_tokens}, max_output_tokens=limit)["max_output_tokens"] == expected


def test_sampling_parameters() -> None:
    out = build(request_body(temperature=0.2, top_p=0.9, top_k=40, stop_sequences=[]))
    assert (out["temperature"], out["top_p"]) == (0.2, 0.9)
    assert "top_k" not in out and "stop" not in out
    assert "temperature" not in build(request_body(temperature=None))


def test_stop_sequences_are_refused() -> None:
    with pytest.raises(InvalidRequestError, match="stop_sequences: provider 'openai'"):
        build(request_body(stop_sequences=["\n\nHuman:"]))


def test_user_and_prompt_cache_key() -> None:
    metadata = {"user_id": '{"device_id":"dev","account_uuid":"","session_id":"sess"}'}
    out = build(request_body(metadata=metadata))
    assert out["user"] == hashlib.sha256(b"dev").hexdigest()[:32] and "prompt_cache_key" not in out
    keyed = build(request_body(metadata=metadata), options={"prompt_cache_key": True})
    assert keyed["prompt_cache_key"] == hashlib.sha256(b"sess").hexdigest()[:32]
    plain = build(request_body(metadata={"user_id": "user-7"}), options={"prompt_cache_key": True})
    assert plain["user"] == hashlib.sha256(b"user-7").hexdigest()[:32] and "prompt_cache_key" not in plain
    assert "user" not in build(request_body())


# --- the upstream request -------------------------------------------------------------------------------------


def test_build_request() -> None:
    p = provider(options={"extra_headers": {"X-Title": "Lynkr"}})
    request = build_request(route(p), request_body([user_turn(text_block("hi"))]), INBOUND)
    assert request.method == "POST"
    assert request.url == "https://api.openai.com/v1/responses"
    assert dict(request.headers) == {
        "content-type": "application/json",
        "accept": "text/event-stream",
        "authorization": "Bearer sk-provider-secret",
        "x-title": "Lynkr",
        "x-request-id": "req_42",
    }
    assert orjson.loads(request.body) == build(request_body([user_turn(text_block("hi"))]))
    assert (request.connect_timeout, request.read_timeout) == (3.0, 120.0)


def test_build_request_for_azure() -> None:
    p = provider(
        base_url="https://res.openai.azure.com/openai/responses",
        auth_style="api-key",
        options={"api_version": "2025-04-01-preview", "deployment": "gpt-5-mini"},
    )
    request = build_request(route(p, "gpt-5-mini"), request_body([user_turn(text_block("hi"))]), INBOUND)
    assert request.url == "https://res.openai.azure.com/openai/responses?api-version=2025-04-01-preview"
    assert ("api-key", "sk-provider-secret") in request.headers
    assert orjson.loads(request.body)["model"] == "gpt-5-mini"
