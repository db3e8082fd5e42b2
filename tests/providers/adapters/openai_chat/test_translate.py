"""Anthropic Messages request -> OpenAI chat completions request (translate.py), rule by rule.

Anthropic side: https://docs.anthropic.com/en/api/messages; OpenAI side:
https://platform.openai.com/docs/api-reference/chat/create; what Claude Code sends: claude-code-wire.md §3 and §8
(the four recorded bodies in tests/fixtures/claude_code).
"""

from __future__ import annotations

import copy
import hashlib
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.wire.errors import InvalidRequestError
from providers.adapters.base import InboundContext
from providers.adapters.common.toolnames import toolname_encode
from providers.adapters.openai_chat.adapter import OpenAIChatAdapter
from providers.adapters.openai_chat.translate import build_body, build_request, tool_choice_to_chat
from tests.providers.adapters.openai_chat.helpers import (
    CLIENT_KEY,
    INBOUND,
    PROVIDER_KEY,
    Json,
    body,
    chunk,
    decode,
    fold,
    keys_anywhere,
    provider,
    route,
    sse,
    tool_delta,
)

CLAUDE_CODE = Path(__file__).resolve().parents[3] / "fixtures" / "claude_code"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
PDF = "JVBERi0xLjQKJcfsj6IK"
OPENAI_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def sent(request: Json, config: Any = None, **changes: Any) -> Json:
    """The JSON body the gateway would send upstream."""
    original = copy.deepcopy(request)
    built = build_request(route(config or provider(**changes)), request, INBOUND)
    assert request == original  # translation never modifies the client's body
    data: Json = orjson.loads(built.body)
    return data


def messages(request: Json, **changes: Any) -> list[Json]:
    out: list[Json] = sent(request, **changes)["messages"]
    return out


def invalid(request: Json, **changes: Any) -> str:
    with pytest.raises(InvalidRequestError) as info:
        build_request(route(provider(**changes)), request, INBOUND)
    assert info.value.status == 400
    return info.value.message


def image(kind: str = "base64") -> Json:
    if kind == "base64":
        return {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    return {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}


# --- system ---------------------------------------------------------------------------------------------------


def test_system_string_becomes_the_leading_system_message() -> None:
    assert messages(body(system="Be brief.")) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello"},
    ]


def test_system_blocks_are_joined_and_cache_control_is_dropped() -> None:
    request = body(
        system=[
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.332.fa9;"},
            {"type": "text", "text": "You are a Claude agent.", "cache_control": {"type": "ephemeral"}},
        ],
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
            }
        ],
    )
    data = sent(request)
    assert data["messages"] == [
        {"role": "system", "content": "x-anthropic-billing-header: cc_version=2.1.332.fa9;\n\nYou are a Claude agent."},
        {"role": "user", "content": "hi"},
    ]
    assert "cache_control" not in keys_anywhere(data)


def test_empty_system_sends_no_system_message() -> None:
    assert messages(body(system="")) == [{"role": "user", "content": "Hello"}]
    assert messages(body(system=[])) == [{"role": "user", "content": "Hello"}]


MID_SYSTEM = body(
    system="top",
    messages=[
        {"role": "user", "content": "one"},
        {
            "role": "system",
            "content": [{"type": "text", "text": "agents: general", "cache_control": {"type": "ephemeral"}}],
        },
        {"role": "assistant", "content": "two"},
        {"role": "system", "content": "reminder", "output_config": {"effort": "medium"}},
        {"role": "user", "content": "three"},
    ],
)


def test_mid_conversation_system_messages_stay_in_place() -> None:
    assert messages(MID_SYSTEM) == [
        {"role": "system", "content": "top"},
        {"role": "user", "content": "one"},
        {"role": "system", "content": "agents: general"},
        {"role": "assistant", "content": "two"},
        {"role": "system", "content": "reminder"},
        {"role": "user", "content": "three"},
    ]


def test_mid_conversation_system_messages_fold_into_the_leading_one() -> None:
    assert messages(MID_SYSTEM, options={"system_messages": "fold"}) == [
        {"role": "system", "content": "top\n\nagents: general\n\nreminder"},
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "two"},
        {"role": "user", "content": "three"},
    ]


def test_fold_without_a_top_level_system_creates_the_leading_one() -> None:
    request = body(messages=[{"role": "user", "content": "one"}, {"role": "system", "content": "late"}])
    assert messages(request, options={"system_messages": "fold"}) == [
        {"role": "system", "content": "late"},
        {"role": "user", "content": "one"},
    ]


# --- user content ---------------------------------------------------------------------------------------------


def test_text_only_user_content_is_one_string() -> None:
    request = body(
        messages=[{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]
    )
    assert messages(request) == [{"role": "user", "content": "a\n\nb"}]


def test_images_become_image_url_parts() -> None:
    request = body(messages=[{"role": "user", "content": [{"type": "text", "text": "look"}, image(), image("url")]}])
    assert messages(request) == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            ],
        }
    ]


def test_image_without_a_media_type_defaults_to_png() -> None:
    request = body(
        messages=[{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "data": "QQ=="}}]}]
    )
    assert messages(request)[0]["content"] == [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,QQ=="}}
    ]


def test_image_to_a_provider_without_images_is_a_400_naming_the_block() -> None:
    request = body(messages=[{"role": "user", "content": [{"type": "text", "text": "look"}, image()]}])
    message = invalid(request, supports_images=False)
    assert message == "messages.0.content.1: provider 'openai' does not accept images"


def test_image_with_an_unsupported_source_is_a_400() -> None:
    request = body(
        messages=[{"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}]
    )
    assert invalid(request) == "messages.0.content.0: image source type 'file' cannot be sent to this provider"


@pytest.mark.parametrize("kind", ["search_result", "server_tool_use", "container_upload", None])
def test_unknown_user_block_is_a_400_naming_the_location(kind: str | None) -> None:
    request = body(
        messages=[
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": "two"},
            {"role": "user", "content": [{"type": "text", "text": "x"}, {"type": kind}]},
        ]
    )
    assert invalid(request) == f"messages.2.content.1: block type {kind!r} cannot be sent to provider 'openai'"


def test_unknown_block_after_a_tool_result_is_named_by_its_own_index() -> None:
    request = body(
        messages=[
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Read", "input": {}}]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "x"}, {"type": "search_result"}],
            },
        ]
    )
    assert invalid(request).startswith("messages.2.content.1:")


def test_thinking_blocks_in_user_content_are_skipped() -> None:
    request = body(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "thinking", "thinking": "t"},
                    {"type": "redacted_thinking", "data": "x"},
                    {"type": "text", "text": "hi"},
                ],
            }
        ]
    )
    assert messages(request) == [{"role": "user", "content": "hi"}]


def test_user_message_with_no_content_sends_nothing() -> None:
    request = body(
        messages=[{"role": "user", "content": ""}, {"role": "user", "content": []}, {"role": "user", "content": "x"}]
    )
    assert messages(request) == [{"role": "user", "content": "x"}]


# --- documents ------------------------------------------------------------------------------------------------


def test_text_document_becomes_text() -> None:
    document = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "The grass is green."},
    }
    request = body(messages=[{"role": "user", "content": [document, {"type": "text", "text": "What colour?"}]}])
    assert messages(request) == [{"role": "user", "content": "The grass is green.\n\nWhat colour?"}]


def test_pdf_with_documents_option_becomes_a_file_part() -> None:
    pdf = {
        "type": "document",
        "title": "report.pdf",
        "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
    }
    untitled = {"type": "document", "source": {"type": "base64", "data": PDF}}
    request = body(messages=[{"role": "user", "content": [pdf, untitled, {"type": "text", "text": "Summarise"}]}])
    assert messages(request, options={"documents": True})[0]["content"] == [
        {"type": "file", "file": {"filename": "report.pdf", "file_data": f"data:application/pdf;base64,{PDF}"}},
        {"type": "file", "file": {"filename": "document.pdf", "file_data": f"data:application/pdf;base64,{PDF}"}},
        {"type": "text", "text": "Summarise"},
    ]


@pytest.mark.parametrize(
    ("source", "options"),
    [
        ({"type": "base64", "media_type": "application/pdf", "data": PDF}, {}),
        ({"type": "url", "url": "https://example.com/a.pdf"}, {"documents": True}),
        ({"type": "content", "content": [{"type": "text", "text": "x"}]}, {"documents": True}),
    ],
    ids=["pdf without the option", "url pdf", "content source"],
)
def test_other_documents_are_a_400_naming_the_block(source: Json, options: Json) -> None:
    request = body(
        messages=[{"role": "user", "content": [{"type": "text", "text": "x"}, {"type": "document", "source": source}]}]
    )
    assert invalid(request, options=options) == (
        "messages.0.content.1: provider 'openai' does not accept documents (set its option documents=true if it does)"
    )


# --- tool results ---------------------------------------------------------------------------------------------


def _tool_turns(*results: Json, tail: list[Json] | None = None) -> Json:
    calls = [
        {"type": "tool_use", "id": r["tool_use_id"], "name": "Read", "input": {"file_path": "/a"}} for r in results
    ]
    return body(
        messages=[
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": calls},
            {"role": "user", "content": [*results, *(tail or [])]},
        ]
    )


def test_tool_results_become_tool_messages_in_order_before_the_users_text() -> None:
    request = _tool_turns(
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "first", "cache_control": {"type": "ephemeral"}},
        {
            "type": "tool_result",
            "tool_use_id": "toolu_2",
            "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
        },
        tail=[{"type": "text", "text": "continue"}],
    )
    assert messages(request)[2:] == [
        {"role": "tool", "tool_call_id": "toolu_1", "content": "first"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "a\n\nb"},
        {"role": "user", "content": "continue"},
    ]


@pytest.mark.parametrize(
    ("content", "expected"), [("denied", "[tool error] denied"), ("", "[tool error]"), (None, "[tool error]")]
)
def test_tool_result_error_flag_stays_visible(content: Any, expected: str) -> None:
    result: Json = {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True}
    if content is not None:
        result["content"] = content
    assert messages(_tool_turns(result))[2] == {"role": "tool", "tool_call_id": "toolu_1", "content": expected}


def test_tool_result_images_follow_in_a_user_message_naming_the_call() -> None:
    request = _tool_turns(
        {
            "type": "tool_result",
            "tool_use_id": "toolu_1",
            "content": [{"type": "text", "text": "screenshot"}, image(), image("url")],
        },
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": "plain"},
        tail=[{"type": "text", "text": "what now?"}],
    )
    assert messages(request)[2:] == [
        {"role": "tool", "tool_call_id": "toolu_1", "content": "screenshot"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "plain"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "[images returned by tool call toolu_1]"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                {"type": "text", "text": "what now?"},
            ],
        },
    ]


def test_tool_result_images_to_a_provider_without_images_is_a_400() -> None:
    request = _tool_turns({"type": "tool_result", "tool_use_id": "toolu_1", "content": [image()]})
    assert invalid(request, supports_images=False) == "messages.2.content.0: provider 'openai' does not accept images"


def test_unsupported_block_inside_a_tool_result_is_a_400_naming_it() -> None:
    request = _tool_turns(
        {
            "type": "tool_result",
            "tool_use_id": "toolu_1",
            "content": [{"type": "text", "text": "x"}, {"type": "document"}],
        }
    )
    assert invalid(request) == "messages.2.content.0.content.1: block type 'document' in a tool_result is not supported"


# --- assistant ------------------------------------------------------------------------------------------------


def test_assistant_text_and_tool_use_keep_both_and_the_ids() -> None:
    request = body(
        messages=[
            {"role": "user", "content": "make two files"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "two writes", "signature": "sig"},
                    {"type": "redacted_thinking", "data": "opaque"},
                    {"type": "text", "text": "Writing "},
                    {"type": "text", "text": "both."},
                    {
                        "type": "tool_use",
                        "id": "toolu_01A",
                        "name": "Write",
                        "input": {"file_path": "/a", "content": "1"},
                    },
                    {"type": "tool_use", "id": "toolu_01B", "name": "Write", "input": {}},
                ],
            },
        ]
    )
    assert messages(request)[1] == {
        "role": "assistant",
        "content": "Writing both.",
        "tool_calls": [
            {
                "id": "toolu_01A",
                "type": "function",
                "function": {"name": "Write", "arguments": '{"file_path":"/a","content":"1"}'},
            },
            {"id": "toolu_01B", "type": "function", "function": {"name": "Write", "arguments": "{}"}},
        ],
    }


def test_assistant_string_content() -> None:
    request = body(messages=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])
    assert messages(request)[1] == {"role": "assistant", "content": "b"}


def test_assistant_thinking_echoed_as_reasoning_content_only_with_the_option() -> None:
    request = body(
        messages=[
            {"role": "user", "content": "a"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm"},
                    {"type": "thinking", "thinking": " ok"},
                    {"type": "text", "text": "b"},
                ],
            },
        ]
    )
    assert messages(request)[1] == {"role": "assistant", "content": "b"}
    assert messages(request, options={"reasoning_echo": True})[1] == {
        "role": "assistant",
        "content": "b",
        "reasoning_content": "hmm ok",
    }


@pytest.mark.parametrize("kind", ["server_tool_use", "web_search_tool_result", "image"])
def test_unknown_assistant_block_is_a_400_naming_the_location(kind: str) -> None:
    request = body(
        messages=[
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": [{"type": "text", "text": "x"}, {"type": kind}]},
        ]
    )
    assert invalid(request) == f"messages.1.content.1: block type {kind!r} cannot be sent to provider 'openai'"


# --- tools ----------------------------------------------------------------------------------------------------

NESTED_SCHEMA: Json = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "mode": {"type": "string", "enum": ["fast", "slow"], "default": "fast"},
        "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 9007199254740991},
        "target": {"anyOf": [{"type": "string", "format": "uri"}, {"type": "null"}]},
        "kind": {"const": "edit"},
        "options": {
            "type": "object",
            "propertyNames": {"pattern": "^[a-z]+$"},
            "additionalProperties": {"type": "integer", "minimum": -9007199254740991},
        },
        "format": {"type": "string", "description": "a property that is called format"},
        "items": {
            "type": "array",
            "items": {"type": "object", "properties": {"id": {"type": "integer", "maximum": 100}}},
        },
    },
    "required": ["mode"],
    "additionalProperties": False,
}


def test_tool_schema_is_kept_whole_by_default() -> None:
    tools = [{"name": "Configure", "description": "Set options", "input_schema": NESTED_SCHEMA}]
    assert sent(body(tools=tools))["tools"] == [
        {
            "type": "function",
            "function": {"name": "Configure", "parameters": NESTED_SCHEMA, "description": "Set options"},
        }
    ]


def test_strict_schema_removes_what_strict_validators_reject() -> None:
    tools = [{"name": "Configure", "input_schema": NESTED_SCHEMA}]
    function = sent(body(tools=tools), options={"strict_schema": True})["tools"][0]["function"]
    assert "description" not in function
    assert function["parameters"] == {
        "type": "object",
        "properties": {
            "mode": {"type": "string", "enum": ["fast", "slow"], "default": "fast"},
            "timeout": {"type": "number"},
            "target": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "kind": {"enum": ["edit"]},
            "options": {"type": "object", "additionalProperties": {"type": "integer"}},
            "format": {"type": "string", "description": "a property that is called format"},
            "items": {
                "type": "array",
                "items": {"type": "object", "properties": {"id": {"type": "integer", "maximum": 100}}},
            },
        },
        "required": ["mode"],
        "additionalProperties": False,
    }


def test_tool_without_a_schema_gets_an_empty_object_schema() -> None:
    tools = [{"name": "Ping", "type": "custom"}]
    assert sent(body(tools=tools))["tools"][0]["function"] == {
        "name": "Ping",
        "parameters": {"type": "object", "properties": {}},
    }


@pytest.mark.parametrize(
    "tool",
    [
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
        {"type": "bash_20250124", "name": "bash"},
        {"type": "text_editor_20250429", "name": "str_replace_based_edit_tool"},
    ],
)
def test_server_tools_without_input_schema_are_a_400(tool: Json) -> None:
    assert invalid(body(tools=[tool])) == (
        f"tools: server tool {tool['type']!r} ({tool['name']}) runs only on Anthropic's API"
    )


def test_tools_to_a_provider_without_tools_is_a_400() -> None:
    assert invalid(body(tools=[{"name": "Read", "input_schema": {"type": "object"}}]), supports_tools=False) == (
        "tools: provider 'openai' does not support tools"
    )


LONG = "mcp__my-company-internal-server__search_the_issue_tracker_for_open_tickets"  # 74 characters
ODD = "mcp__github.com/octo__create.issue"


@pytest.mark.parametrize("name", [LONG, ODD, "x" * 65, "Bash(git status)"])
def test_invalid_tool_names_are_shortened_reversibly(name: str) -> None:
    encoded = toolname_encode(name)
    assert OPENAI_NAME.match(encoded)
    assert encoded != name
    request = body(
        tools=[
            {"name": name, "input_schema": {"type": "object"}},
            {"name": "Read", "input_schema": {"type": "object"}},
        ],
        tool_choice={"type": "tool", "name": name},
        messages=[
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": name, "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]},
        ],
    )
    data = sent(request)
    assert [t["function"]["name"] for t in data["tools"]] == [encoded, "Read"]
    assert data["tool_choice"] == {"type": "function", "function": {"name": encoded}}
    assert data["messages"][1]["tool_calls"][0]["function"]["name"] == encoded
    # The model calls the encoded name; the client sees its own name again.
    stream = sse(
        chunk(tool_delta(0, "{}", call_id="call_1", name=encoded)),
        chunk(tool_delta(1, "{}", call_id="call_2", name="Read")),
        chunk(finish="tool_calls"),
    )
    names = [block["name"] for block in fold(decode([stream], request))["content"]]
    assert names == [name, "Read"]


def test_long_name_of_a_tool_revealed_by_tool_search_is_restored_in_the_stream() -> None:
    request = body(
        tools=[
            {"name": "ToolSearch", "input_schema": {"type": "object"}},
            {"name": "DeferredToolPlaceholder", "defer_loading": True, "input_schema": {"type": "object"}},
        ],
        messages=[
            {"role": "user", "content": "open tickets?"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "ToolSearch", "input": {"query": "tickets"}}],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "content": "<functions><function>"
                        + orjson.dumps({"description": "d", "name": LONG, "parameters": {"type": "object"}}).decode()
                        + "</function></functions>",
                    }
                ],
            },
        ],
    )
    encoded = toolname_encode(LONG)
    assert [t["function"]["name"] for t in sent(request)["tools"]] == ["ToolSearch", encoded]
    stream = sse(chunk(tool_delta(0, "{}", call_id="call_1", name=encoded)), chunk(finish="tool_calls"))
    assert fold(decode([stream], request))["content"][0]["name"] == LONG


def test_deferred_tools_are_omitted_and_tool_search_results_declared() -> None:
    revealed = {
        "description": "Edit a notebook cell",
        "name": "NotebookEdit",
        "parameters": {"type": "object", "properties": {"cell": {"type": "integer"}}},
    }
    result = (
        "<functions>\n"
        f"<function>{orjson.dumps(revealed).decode()}</function>\n"
        '<function>{"description": "already declared", "name": "Read", "parameters": {}}</function>\n'
        "<function>{not json}</function>\n"
        '<function>{"description": "no name"}</function>\n'
        "</functions>"
    )
    request = body(
        tools=[
            {"name": "ToolSearch", "description": "find tools", "input_schema": {"type": "object"}},
            {"name": "Read", "input_schema": {"type": "object"}},
            {"name": "DeferredToolPlaceholder", "defer_loading": True, "input_schema": {"type": "object"}},
        ],
        messages=[
            {"role": "user", "content": "edit the notebook"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "t1", "name": "ToolSearch", "input": {"query": "select:NotebookEdit"}}
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": result}]}
                ],
            },
        ],
    )
    assert sent(request)["tools"] == [
        {
            "type": "function",
            "function": {"name": "ToolSearch", "parameters": {"type": "object"}, "description": "find tools"},
        },
        {"type": "function", "function": {"name": "Read", "parameters": {"type": "object"}}},
        {
            "type": "function",
            "function": {
                "name": "NotebookEdit",
                "parameters": revealed["parameters"],
                "description": "Edit a notebook cell",
            },
        },
    ]


def test_function_lines_are_ignored_without_tool_search() -> None:
    request = body(
        tools=[{"name": "Read", "input_schema": {"type": "object"}}, {"name": "Later", "defer_loading": True}],
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t",
                        "content": '<function>{"name": "Sneaky", "parameters": {}}</function>',
                    }
                ],
            },
        ],
    )
    assert [t["function"]["name"] for t in sent(request)["tools"]] == ["Read"]


def test_only_deferred_tools_sends_no_tools_and_no_tool_choice() -> None:
    data = sent(body(tools=[{"name": "Later", "defer_loading": True}], tool_choice={"type": "any"}))
    assert "tools" not in data and "tool_choice" not in data and "parallel_tool_calls" not in data


# --- tool_choice ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("choice", "expected_choice", "expected_parallel"),
    [
        ({"type": "auto"}, "auto", None),
        ({"type": "any"}, "required", None),
        ({"type": "tool", "name": "Read"}, {"type": "function", "function": {"name": "Read"}}, None),
        ({"type": "none"}, "none", None),
        ({"type": "auto", "disable_parallel_tool_use": True}, "auto", False),
        ({"type": "any", "disable_parallel_tool_use": True}, "required", False),
        (
            {"type": "tool", "name": "Read", "disable_parallel_tool_use": True},
            {"type": "function", "function": {"name": "Read"}},
            False,
        ),
        ({"type": "none", "disable_parallel_tool_use": True}, "none", None),
        ({"type": "auto", "disable_parallel_tool_use": False}, "auto", None),
    ],
)
def test_tool_choice_mapping(choice: Json, expected_choice: Any, expected_parallel: bool | None) -> None:
    data = sent(body(tools=[{"name": "Read", "input_schema": {"type": "object"}}], tool_choice=choice))
    assert data["tool_choice"] == expected_choice
    assert data.get("parallel_tool_calls") == expected_parallel
    assert ("parallel_tool_calls" in data) == (expected_parallel is not None)


def test_no_tool_choice_sends_none() -> None:
    data = sent(body(tools=[{"name": "Read", "input_schema": {"type": "object"}}]))
    assert "tool_choice" not in data and "parallel_tool_calls" not in data
    assert tool_choice_to_chat("auto") == (None, None)


def test_unknown_tool_choice_is_a_400() -> None:
    request = body(tools=[{"name": "Read", "input_schema": {"type": "object"}}], tool_choice={"type": "sometimes"})
    assert invalid(request) == "tool_choice.type: 'sometimes' is not one of auto, any, tool, none"


# --- thinking, output_config ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "effort"),
    [
        ({"thinking": {"type": "adaptive"}}, "medium"),
        ({"thinking": {"type": "adaptive"}, "output_config": {"effort": "high"}}, "high"),
        ({"thinking": {"type": "adaptive", "display": "omitted"}, "output_config": {"effort": "medium"}}, "medium"),
        ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "low"),
        ({"thinking": {"type": "enabled", "budget_tokens": 4096}}, "medium"),
        ({"thinking": {"type": "enabled", "budget_tokens": 16384}}, "high"),
        ({"thinking": {"type": "enabled", "budget_tokens": 31999}}, "high"),
        ({"thinking": {"type": "enabled", "budget_tokens": 31999}, "output_config": {"effort": "max"}}, "high"),
        ({"output_config": {"effort": "minimal"}}, "low"),
        ({"output_config": {"effort": "xhigh"}}, "high"),
        ({"thinking": {"type": "disabled"}, "output_config": {"effort": "high"}}, None),
        ({}, None),
    ],
)
def test_reasoning_effort_only_for_thinking_providers(fields: Json, effort: str | None) -> None:
    request = body(**fields)
    assert sent(request, supports_thinking=True).get("reasoning_effort") == effort
    assert "reasoning_effort" not in sent(request, supports_thinking=False)
    assert "thinking" not in sent(request, supports_thinking=True)
    assert "output_config" not in sent(request, supports_thinking=True)


def test_output_config_json_schema_becomes_response_format() -> None:
    schema = {
        "type": "object",
        "properties": {"title": {"type": "string"}},
        "required": ["title"],
        "additionalProperties": False,
    }
    data = sent(body(output_config={"format": {"type": "json_schema", "schema": schema}}))
    assert data["response_format"] == {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
    assert (
        sent(body(output_config={"format": {"type": "json_schema"}}))["response_format"]["json_schema"]["schema"] == {}
    )
    assert "response_format" not in sent(body(output_config={"format": {"type": "text"}}))
    assert "response_format" not in sent(body(output_config={"effort": "high"}))


# --- sampling, limits, metadata -------------------------------------------------------------------------------


def test_a_streaming_client_is_streamed_with_usage() -> None:
    request = build_request(route(), body(stream=True), INBOUND)
    data = orjson.loads(request.body)
    assert data["stream"] is True
    assert data["stream_options"] == {"include_usage": True}
    assert data["model"] == "gpt-4o"
    assert _headers(request)["accept"] == "text/event-stream"


@pytest.mark.parametrize("changes", [{"stream": False}, {}], ids=["stream-false", "stream-absent"])
def test_a_non_streaming_client_gets_one_completion(changes: dict[str, bool]) -> None:
    """Claude Code's fallback sends no ``stream`` key at all (claude-code-wire.md §3)."""
    request = build_request(route(), body(**changes), INBOUND)
    data = orjson.loads(request.body)
    assert data["stream"] is False
    assert "stream_options" not in data
    assert _headers(request)["accept"] == "application/json"


@pytest.mark.parametrize(
    ("requested", "limit", "expected"), [(64000, 16384, 16384), (1000, 16384, 1000), (128000, None, 128000)]
)
def test_max_tokens_clamped_to_the_provider_limit(requested: int, limit: int | None, expected: int) -> None:
    assert sent(body(max_tokens=requested), max_output_tokens=limit)["max_tokens"] == expected


def test_max_tokens_field_option() -> None:
    data = sent(body(max_tokens=500), options={"max_tokens_field": "max_completion_tokens"})
    assert data["max_completion_tokens"] == 500
    assert "max_tokens" not in data


def test_sampling_parameters() -> None:
    request = body(stop_sequences=["###", "END"], temperature=0.2, top_p=0.9, top_k=40)
    data = sent(request)
    assert (data["stop"], data["temperature"], data["top_p"]) == (["###", "END"], 0.2, 0.9)
    assert "top_k" not in data and "stop_sequences" not in data
    assert sent(request, options={"top_k": True})["top_k"] == 40
    assert not {"stop", "temperature", "top_p", "top_k"} & set(sent(body(), options={"top_k": True}))
    assert sent(body(temperature=0))["temperature"] == 0


DEVICE = "8fdc859b1b8fb6ac7d0ea513edd719349f667f0c4011ff4e94ebeb2c4667825f"
SESSION = "14b17683-0821-408a-980e-4d4e34369a5f"
CLAUDE_CODE_USER = orjson.dumps({"device_id": DEVICE, "account_uuid": "", "session_id": SESSION}).decode()


def test_user_id_is_hashed_and_no_raw_device_id_goes_upstream() -> None:
    request = body(metadata={"user_id": CLAUDE_CODE_USER})
    built = build_request(route(provider(options={"prompt_cache_key": True})), request, INBOUND)
    data = orjson.loads(built.body)
    device = "8fdc859b1b8fb6ac7d0ea513edd719349f667f0c4011ff4e94ebeb2c4667825f"
    session = "14b17683-0821-408a-980e-4d4e34369a5f"
    assert data["user"] == hashlib.sha256(device.encode()).hexdigest()[:32]
    assert data["prompt_cache_key"] == hashlib.sha256(session.encode()).hexdigest()[:32]
    assert device.encode() not in built.body and session.encode() not in built.body
    assert "metadata" not in data
    assert "prompt_cache_key" not in sent(request)


def test_plain_user_id_and_no_user_id() -> None:
    assert sent(body(metadata={"user_id": "alice"}))["user"] == hashlib.sha256(b"alice").hexdigest()[:32]
    assert "prompt_cache_key" not in sent(body(metadata={"user_id": "alice"}), options={"prompt_cache_key": True})
    assert "user" not in sent(body(metadata={}))
    assert "user" not in sent(body())


# --- request line and headers ---------------------------------------------------------------------------------


def _headers(request: Any) -> dict[str, str]:
    names = [name for name, _ in request.headers]
    assert len(names) == len(set(names)), names
    return dict(request.headers)


def test_request_line_timeouts_and_bearer_auth() -> None:
    request = build_request(route(), body(), INBOUND)
    assert (request.method, request.url) == ("POST", "https://api.openai.com/v1/chat/completions")
    assert (request.connect_timeout, request.read_timeout) == (3.0, 120.0)
    assert _headers(request) == {
        "content-type": "application/json",
        "accept": "application/json",  # body() does not stream
        "authorization": f"Bearer {PROVIDER_KEY}",
        "x-request-id": "req_42",
    }


@pytest.mark.parametrize(
    ("style", "credential", "expected"),
    [
        ("api-key", PROVIDER_KEY, {"api-key": PROVIDER_KEY}),
        ("x-api-key", PROVIDER_KEY, {"x-api-key": PROVIDER_KEY}),
        ("none", PROVIDER_KEY, {}),
        ("bearer", "", {}),
    ],
)
def test_auth_styles(style: str, credential: str, expected: dict[str, str]) -> None:
    headers = _headers(
        build_request(route(provider(auth_style=style, credential=credential)), body(), InboundContext())
    )
    assert {k: v for k, v in headers.items() if k not in ("content-type", "accept")} == expected


def test_extra_headers_are_added() -> None:
    config = provider(options={"extra_headers": {"HTTP-Referer": "https://lynkr.dev", "X-Title": "Lynkr"}})
    headers = _headers(build_request(route(config), body(), InboundContext()))
    assert headers["http-referer"] == "https://lynkr.dev"
    assert headers["x-title"] == "Lynkr"
    assert "x-request-id" not in headers


def test_the_clients_key_never_reaches_the_upstream() -> None:
    request = body(metadata={"user_id": CLAUDE_CODE_USER})
    for config in (provider(), provider(auth_style="api-key"), provider(credential=""), provider(auth_style="none")):
        built = build_request(route(config), request, INBOUND)
        assert CLIENT_KEY not in repr(built.headers)
        assert b"sk-lynkr" not in built.body
        assert {name for name, _ in built.headers} <= {
            "content-type",
            "accept",
            "authorization",
            "api-key",
            "x-api-key",
            "x-request-id",
        }


def test_url_comes_from_the_adapter_when_it_has_one() -> None:
    assert build_request(route(), body(), INBOUND, url="https://example.com/x").url == "https://example.com/x"
    assert OpenAIChatAdapter().url(route()) is None
    assert (
        OpenAIChatAdapter().build_request(route(), body(), INBOUND).url == "https://api.openai.com/v1/chat/completions"
    )


# --- the recorded Claude Code bodies --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["2.1.197-turn1", "2.1.197-turn2", "2.1.332-turn1", "2.1.332-turn2"])
def test_recorded_claude_code_bodies_translate(name: str) -> None:
    request = orjson.loads((CLAUDE_CODE / f"{name}.json").read_bytes())
    config = provider(
        supports_thinking=True, max_output_tokens=32768, options={"strict_schema": True, "prompt_cache_key": True}
    )
    data = build_body(route(config), copy.deepcopy(request))
    roles = [m["role"] for m in data["messages"]]
    assert roles[0] == "system" and data["messages"][0]["content"].startswith("x-anthropic-billing-header")
    assert roles[1:3] == ["user", "system"]  # the mid-conversation system message stays where it was
    if name.endswith("turn2"):
        assert roles[3:] == ["assistant", "tool"]
        call = data["messages"][3]["tool_calls"][0]
        assert call["function"]["name"] == "Write"
        assert data["messages"][4]["tool_call_id"] == call["id"] == request["messages"][2]["content"][0]["id"]
    declared = [t["name"] for t in request["tools"] if not t.get("defer_loading")]
    assert [t["function"]["name"] for t in data["tools"]] == declared
    assert not {"cache_control", "$schema", "propertyNames", "exclusiveMinimum", "defer_loading"} & keys_anywhere(data)
    assert data["max_tokens"] == 32768
    assert data["reasoning_effort"] == request["output_config"]["effort"]
    assert len(data["user"]) == 32 and len(data["prompt_cache_key"]) == 32
    assert not {"thinking", "context_management", "output_config", "metadata", "system"} & set(data)
    assert all(OPENAI_NAME.match(t["function"]["name"]) for t in data["tools"])


@pytest.mark.parametrize("name", ["2.1.197-turn1", "2.1.332-turn2"])
def test_recorded_claude_code_bodies_keep_the_schema_whole_by_default(name: str) -> None:
    request = orjson.loads((CLAUDE_CODE / f"{name}.json").read_bytes())
    data = build_body(route(), request)
    by_name = {t["name"]: t for t in request["tools"]}
    for tool in data["tools"]:
        assert tool["function"]["parameters"] == by_name[tool["function"]["name"]]["input_schema"]
