"""Canonical inbound types: validation of Anthropic Messages requests as Claude Code sends them.

https://docs.anthropic.com/en/api/messages; what Claude Code sends: shared/reference/claude-code-wire.md §3 and §8.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.wire import (
    CountTokensRequest,
    Message,
    MessagesRequest,
    TextBlock,
    Tool,
    ToolResultBlock,
    ToolUseBlock,
    UnknownBlock,
)
from gateway.wire.messages import (
    DocumentBlock,
    ImageBlock,
    RedactedThinkingBlock,
    ThinkingBlock,
    describe_validation_error,
)

SCHEMA = "https://json-schema.org/draft/2020-12/schema"

# A Claude Code turn-1 body (shortened): field order, shapes and extra fields as in claude-code-wire.md §3 and §8.
TURN_1: dict[str, Any] = {
    "model": "claude-opus-5-5",
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "<system-reminder>\ncurrentDate: 2026-11-26\n</system-reminder>"},
                {
                    "type": "text",
                    "text": "create a file hello.txt containing hi",
                    "cache_control": {"type": "ephemeral"},
                },
            ],
        },
        {
            "role": "system",
            "content": "Available agent types for the Agent tool: general-purpose, Explore, Plan",
            "output_config": {"effort": "medium"},
        },
    ],
    "system": [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.332.38b; cc_entrypoint=sdk-cli;"},
        {
            "type": "text",
            "text": "You are a Claude agent, built on Anthropic's Claude Agent SDK.",
            "cache_control": {"type": "ephemeral"},
        },
        {
            "type": "text",
            "text": "# Environment\nPrimary working directory: /work/project",
            "cache_control": {"type": "ephemeral"},
        },
    ],
    "tools": [
        {
            "name": "Write",
            "description": "Writes a file to the local filesystem.",
            "input_schema": {
                "$schema": SCHEMA,
                "type": "object",
                "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}},
                "required": ["file_path", "content"],
                "additionalProperties": False,
            },
        },
        {
            "name": "Bash",
            "description": "Executes a bash command.",
            "input_schema": {
                "$schema": SCHEMA,
                "type": "object",
                "properties": {
                    "command": {"type": "string"},
                    "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 9007199254740991},
                },
                "required": ["command"],
                "additionalProperties": False,
            },
        },
        {"name": "NotebookEdit", "defer_loading": True},
    ],
    "metadata": {
        "user_id": '{"device_id":"8f3a","account_uuid":"","session_id":"0b9e2c51-7d7e-4f7c-9c33-3f1b2d1e4a5c"}'
    },
    "max_tokens": 128000,
    "thinking": {"type": "adaptive", "display": "omitted"},
    "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    "output_config": {"effort": "medium"},
    "stream": True,
}

# Turn 2: the assistant message echoed back exactly (thinking with signature, text, tool_use), then the tool result.
TURN_2_MESSAGES: list[dict[str, Any]] = [
    {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "The user wants a file.", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3h"},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"},
            {"type": "text", "text": "I'll create it."},
            {
                "type": "tool_use",
                "id": "toolu_01A09q90qw90lq917835lq9",
                "name": "Write",
                "input": {"file_path": "/work/project/hello.txt", "content": "hi"},
            },
        ],
    },
    {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
                "content": (
                    "Claude requested permissions to write to /work/project/hello.txt, but you haven't granted it yet."
                ),
                "is_error": True,
                "cache_control": {"type": "ephemeral"},
            }
        ],
    },
]


def _turn_2() -> dict[str, Any]:
    body = copy.deepcopy(TURN_1)
    body["messages"] += copy.deepcopy(TURN_2_MESSAGES)
    return body


def _errors(body: dict[str, Any], model: Any = MessagesRequest) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as info:
        model.model_validate(body)
    return [(".".join(str(part) for part in error["loc"]), error["type"]) for error in info.value.errors()]


def _minimal(**changes: Any) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}], **changes}


# --- a realistic Claude Code body -----------------------------------------------------------------------------


def test_claude_code_turn_1_validates() -> None:
    request = MessagesRequest.model_validate(TURN_1)
    assert request.model == "claude-opus-5-5"
    assert request.max_tokens == 128000
    assert request.stream is True
    assert request.thinking == {"type": "adaptive", "display": "omitted"}
    user, _ = request.messages
    assert user.role == "user"
    assert [type(block) for block in user.content] == [TextBlock, TextBlock]
    assert user.content[1].model_extra == {"cache_control": {"type": "ephemeral"}}


def test_unknown_top_level_fields_are_kept() -> None:
    request = MessagesRequest.model_validate(TURN_1)
    assert request.model_extra == {
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "medium"},
    }


def test_a_system_message_with_its_own_per_message_fields() -> None:
    system = MessagesRequest.model_validate(TURN_1).messages[1]
    assert system.role == "system"
    assert system.content == "Available agent types for the Agent tool: general-purpose, Explore, Plan"
    assert system.model_extra == {"output_config": {"effort": "medium"}}


def test_system_prompt_blocks_keep_cache_control() -> None:
    system = MessagesRequest.model_validate(TURN_1).system
    assert isinstance(system, list)
    cached = {"cache_control": {"type": "ephemeral"}}
    assert [block.model_extra for block in system] == [{}, cached, cached]


def test_tools_with_json_schema_2020_12_and_defer_loading() -> None:
    tools = MessagesRequest.model_validate(TURN_1).tools
    assert tools is not None
    assert [tool.name for tool in tools] == ["Write", "Bash", "NotebookEdit"]
    assert tools[0].input_schema is not None
    assert tools[0].input_schema["$schema"] == SCHEMA
    deferred = tools[2]
    assert (deferred.description, deferred.input_schema, deferred.type) == (None, None, None)
    assert deferred.model_extra == {"defer_loading": True}


def test_metadata_user_id_is_a_json_string() -> None:
    metadata = MessagesRequest.model_validate(TURN_1).metadata
    assert metadata is not None
    assert metadata["user_id"].startswith('{"device_id":')


def test_the_echoed_assistant_turn_and_tool_result_validate() -> None:
    request = MessagesRequest.model_validate(_turn_2())
    assistant, user = request.messages[2:]
    assert [type(block) for block in assistant.content] == [
        ThinkingBlock,
        RedactedThinkingBlock,
        TextBlock,
        ToolUseBlock,
    ]
    thinking = assistant.content[0]
    assert isinstance(thinking, ThinkingBlock)
    assert thinking.signature == "EqQBCgIYAhIM1gbcDa9GJwZA2b3h"
    tool_use = assistant.content[3]
    assert isinstance(tool_use, ToolUseBlock)
    assert tool_use.input == {"file_path": "/work/project/hello.txt", "content": "hi"}
    (result,) = user.content
    assert isinstance(result, ToolResultBlock)
    assert result.is_error is True
    assert result.tool_use_id == "toolu_01A09q90qw90lq917835lq9"
    assert result.model_extra == {"cache_control": {"type": "ephemeral"}}


def test_validation_round_trips_the_body() -> None:
    # Dumping the validated model gives back exactly what the client sent: nothing dropped, nothing added.
    body = _turn_2()
    assert MessagesRequest.model_validate(body).model_dump(exclude_unset=True) == body


def test_validation_does_not_modify_the_body() -> None:
    body = _turn_2()
    MessagesRequest.model_validate(body)
    assert body == _turn_2()


# --- blocks ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "cls"),
    [
        ({"type": "text", "text": "hi"}, TextBlock),
        (
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            ImageBlock,
        ),
        (
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "The grass is green."}},
            DocumentBlock,
        ),
        ({"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}}, ToolUseBlock),
        ({"type": "tool_result", "tool_use_id": "toolu_1"}, ToolResultBlock),
        (
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "15 degrees"}]},
            ToolResultBlock,
        ),
        ({"type": "thinking", "thinking": "hmm"}, ThinkingBlock),
        ({"type": "redacted_thinking", "data": "EmwKAhgB"}, RedactedThinkingBlock),
    ],
)
def test_known_block_types(block: dict[str, Any], cls: type) -> None:
    request = MessagesRequest.model_validate(_minimal(messages=[{"role": "user", "content": [block]}]))
    assert type(request.messages[0].content[0]) is cls


def test_tool_result_and_thinking_defaults() -> None:
    request = MessagesRequest.model_validate(
        _minimal(
            messages=[
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}]},
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "x"}]},
            ]
        )
    )
    result, thinking = request.messages[0].content[0], request.messages[1].content[0]
    assert isinstance(result, ToolResultBlock)
    assert (result.content, result.is_error) == (None, None)
    assert isinstance(thinking, ThinkingBlock)
    assert thinking.signature is None


@pytest.mark.parametrize(
    "block",
    [
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "weather"}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
        {"type": "search_result", "source": "https://example.com", "title": "t", "content": []},
        {"type": "container_upload", "file_id": "file_1"},
        {"type": "some_future_block", "anything": {"goes": [1, 2]}},
    ],
)
def test_unknown_block_types_become_unknown_block_with_all_their_fields(block: dict[str, Any]) -> None:
    request = MessagesRequest.model_validate(_minimal(messages=[{"role": "assistant", "content": [block]}]))
    (parsed,) = request.messages[0].content
    assert type(parsed) is UnknownBlock
    assert parsed.model_dump() == block


def test_an_already_validated_block_is_accepted_by_its_type_attribute() -> None:
    text = TextBlock(type="text", text="hi")
    unknown = UnknownBlock.model_validate({"type": "future", "x": 1})
    message = Message.model_validate({"role": "user", "content": [text, unknown]})
    assert [type(block) for block in message.content] == [TextBlock, UnknownBlock]


def test_string_content_and_string_system() -> None:
    request = MessagesRequest.model_validate(_minimal(system="You are terse."))
    assert request.messages[0].content == "hi"
    assert request.system == "You are terse."


def test_optional_fields_default_to_none() -> None:
    request = MessagesRequest.model_validate(_minimal())
    assert request.stream is False
    assert (request.system, request.tools, request.tool_choice, request.metadata, request.thinking) == (None,) * 5
    assert (request.temperature, request.top_p, request.top_k, request.stop_sequences) == (None,) * 4
    assert request.model_extra == {}


def test_sampling_fields() -> None:
    request = MessagesRequest.model_validate(
        _minimal(temperature=0.2, top_p=0.9, top_k=5, stop_sequences=["\n\nHuman:"], tool_choice={"type": "any"})
    )
    assert (request.temperature, request.top_p, request.top_k) == (0.2, 0.9, 5)
    assert request.stop_sequences == ["\n\nHuman:"]
    assert request.tool_choice == {"type": "any"}


def test_a_server_tool_definition() -> None:
    tool = Tool.model_validate({"type": "web_search_20250305", "name": "web_search", "max_uses": 5})
    assert (tool.type, tool.name, tool.model_extra) == ("web_search_20250305", "web_search", {"max_uses": 5})


# --- failures name the location -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "location", "error_type"),
    [
        ({"max_tokens": 1, "messages": []}, "model", "missing"),
        (_minimal(model=""), "model", "string_too_short"),
        ({"model": "m", "messages": []}, "max_tokens", "missing"),
        (_minimal(max_tokens=0), "max_tokens", "greater_than_equal"),
        ({"model": "m", "max_tokens": 1}, "messages", "missing"),
        (_minimal(messages=[{"content": "hi"}]), "messages.0.role", "missing"),
        (_minimal(messages=[{"role": "tool", "content": "hi"}]), "messages.0.role", "literal_error"),
        (_minimal(messages=[{"role": "user"}]), "messages.0.content", "missing"),
        (_minimal(tools=[{"description": "no name"}]), "tools.0.name", "missing"),
        (_minimal(tools=[{"name": ""}]), "tools.0.name", "string_too_short"),
        (_minimal(system=[{"type": "text"}]), "system.list[TextBlock].0.text", "missing"),
        (_minimal(stream="yes please"), "stream", "bool_parsing"),
    ],
)
def test_invalid_requests_name_the_location(body: dict[str, Any], location: str, error_type: str) -> None:
    assert (location, error_type) in _errors(body)


BLOCKS = (
    "TextBlock,ImageBlock,DocumentBlock,ToolUseBlock,ToolResultBlock,ThinkingBlock,RedactedThinkingBlock,UnknownBlock"
)
TAGGED = f"list[tagged-union[{BLOCKS}]]"


@pytest.mark.parametrize(
    ("block", "location", "error_type"),
    [
        ({"type": "text"}, "text.text", "missing"),
        ({"type": "tool_use", "id": "t", "name": "n"}, "tool_use.input", "missing"),
        ({"type": "tool_use", "name": "n", "input": {}}, "tool_use.id", "missing"),
        ({"type": "tool_result"}, "tool_result.tool_use_id", "missing"),
        ({"type": "tool_result", "tool_use_id": "t", "is_error": "maybe"}, "tool_result.is_error", "bool_parsing"),
        ({"type": "thinking", "signature": "s"}, "thinking.thinking", "missing"),
        ({"type": "redacted_thinking"}, "redacted_thinking.data", "missing"),
        ({"type": "image"}, "image.source", "missing"),
        ({"text": "no type"}, "unknown.type", "missing"),
        ("just a string", "unknown", "model_type"),
    ],
)
def test_invalid_blocks_name_the_message_block_and_field(block: Any, location: str, error_type: str) -> None:
    body = _minimal(messages=[{"role": "user", "content": "ok"}, {"role": "user", "content": [block]}])
    assert (f"messages.1.content.{TAGGED}.0.{location}", error_type) in _errors(body)


def test_count_tokens_request() -> None:
    # Claude Code's count_tokens body: {model, messages, tools} only (claude-code-wire.md §3).
    body = {"model": "claude-opus-5-5", "messages": [{"role": "user", "content": "foo"}], "tools": TURN_1["tools"]}
    request = CountTokensRequest.model_validate(body)
    assert request.system is None
    assert request.tools is not None
    assert request.model_dump(exclude_unset=True) == body
    assert ("model", "missing") in _errors({"messages": []}, CountTokensRequest)
    assert ("messages", "missing") in _errors({"model": "m"}, CountTokensRequest)


@pytest.mark.parametrize("block_type", [["text"], {"name": "text"}], ids=["list", "object"])
def test_an_unhashable_block_type_is_a_validation_error(block_type: Any) -> None:
    errors = _errors(_minimal(messages=[{"role": "user", "content": [{"type": block_type, "text": "hi"}]}]))
    assert errors


def test_the_described_error_of_a_bad_block_names_the_missing_field() -> None:
    with pytest.raises(ValidationError) as info:
        MessagesRequest.model_validate(_minimal(messages=[{"role": "user", "content": [{"type": "text"}]}]))
    message = describe_validation_error(info.value.errors(include_url=False))
    assert message == "messages.0.content.0.text: Field required"


def test_the_described_error_of_a_top_level_field() -> None:
    with pytest.raises(ValidationError) as info:
        MessagesRequest.model_validate({"model": "m", "messages": []})
    assert describe_validation_error(info.value.errors(include_url=False)) == "max_tokens: Field required"


def test_error_status_can_be_overridden_per_instance() -> None:
    from gateway.wire.errors import InvalidRequestError

    error = InvalidRequestError("method not allowed", status=405)
    assert error.status == 405 and InvalidRequestError.status == 400
