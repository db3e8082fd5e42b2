"""Anthropic ``system``/``messages`` -> Responses ``instructions``/``input`` items (pure), rule by rule.

Input items: https://platform.openai.com/docs/api-reference/responses/create#responses-create-input; reasoning items
passed back: https://platform.openai.com/docs/guides/reasoning#encrypted-reasoning-items.
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway.wire.errors import InvalidRequestError
from providers.adapters.common.content import tool_result_split
from providers.adapters.common.signatures import signature_mint
from providers.adapters.common.toolnames import toolname_encode

from ._helpers import (
    PNG,
    PNG_PART,
    Json,
    assistant_turn,
    build,
    input_of,
    request_body,
    sig,
    text_block,
    user_turn,
)

RS_ID = "rs_6806bfca0b2481918a5748308061a2600d3ce51bdffd5476"
ENC = "gAAAAABoBr_KxHVnYMlPb2i8Aly"


# --- system ---------------------------------------------------------------------------------------------------


def test_system_string_and_blocks_become_instructions() -> None:
    assert build(request_body(system="Be brief."))["instructions"] == "Be brief."
    blocks = [text_block("One."), {"type": "text", "text": "Two.", "cache_control": {"type": "ephemeral"}}]
    assert build(request_body(system=blocks))["instructions"] == "One.\n\nTwo."
    assert "instructions" not in build(request_body([user_turn(text_block("hi"))]))


def test_mid_conversation_system_message_in_place() -> None:
    messages = [
        user_turn(text_block("hi")),
        {"role": "system", "content": "Agents: x", "output_config": {"effort": "low"}},
    ]
    developer = {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Agents: x"}]}
    assert input_of(messages)[1] == developer
    assert input_of(messages, options={"system_role": "system"})[1] == {**developer, "role": "system"}


def test_mid_conversation_system_message_folded() -> None:
    body = request_body(
        [user_turn(text_block("hi")), {"role": "system", "content": [text_block("Agents: x")]}], system="Main."
    )
    out = build(body, options={"system_messages": "fold"})
    assert out["instructions"] == "Main.\n\nAgents: x"
    assert [item["role"] for item in out["input"]] == ["user"]


def test_system_with_a_non_text_block_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match=r"messages\.0\.content\.1: block type 'image'"):
        input_of([{"role": "system", "content": [text_block("x"), PNG]}])
    with pytest.raises(InvalidRequestError, match=r"^system\.content\.0: block type 'image'"):
        build(request_body(system=[PNG]))


# --- user content ---------------------------------------------------------------------------------------------


def test_user_text_and_images() -> None:
    url_image = {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
    items = input_of([user_turn(text_block("What is this?"), PNG, url_image)])
    assert items == [
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What is this?"},
                PNG_PART,
                {"type": "input_image", "image_url": "https://example.com/cat.jpg", "detail": "auto"},
            ],
        }
    ]


def test_images_refused_when_the_provider_takes_none() -> None:
    with pytest.raises(InvalidRequestError, match=r"messages\.0\.content\.0: provider 'openai' does not accept images"):
        input_of([user_turn(PNG)], supports_images=False)
    tool_result = {"type": "tool_result", "tool_use_id": "t", "content": [PNG]}
    with pytest.raises(InvalidRequestError, match=r"messages\.0\.content\.0\.content\.0: .* does not accept images"):
        input_of([user_turn(tool_result)], supports_images=False)


def test_image_with_an_unknown_source_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="image source type 'file'"):
        input_of([user_turn({"type": "image", "source": {"type": "file", "file_id": "f"}})])


def test_documents() -> None:
    pdf = {
        "type": "document",
        "title": "report.pdf",
        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
    }
    untitled = {"type": "document", "source": {"type": "base64", "data": "JVBERi0="}}
    text_doc = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain words"}}
    url_doc = {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}
    (item,) = input_of([user_turn(pdf, untitled, text_doc, url_doc)])
    assert item["content"] == [
        {"type": "input_file", "filename": "report.pdf", "file_data": "data:application/pdf;base64,JVBERi0="},
        {"type": "input_file", "filename": "document.pdf", "file_data": "data:application/pdf;base64,JVBERi0="},
        {"type": "input_text", "text": "plain words"},
        {"type": "input_file", "file_url": "https://example.com/a.pdf"},
    ]


def test_document_with_an_unknown_source_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match=r"messages\.0\.content\.0: document source type 'content'"):
        input_of([user_turn({"type": "document", "source": {"type": "content", "content": []}})])


@pytest.mark.parametrize("kind", ["search_result", "thinking", "container_upload", None])
def test_unsupported_user_blocks_are_refused_by_name(kind: str | None) -> None:
    with pytest.raises(InvalidRequestError, match=rf"messages\.0\.content\.1: block type {kind!r} cannot be sent"):
        input_of([user_turn(text_block("x"), {"type": kind})])


# --- tool results ---------------------------------------------------------------------------------------------


def test_tool_results_in_order_with_the_user_text_around_them() -> None:
    items = input_of(
        [
            user_turn(
                {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": [text_block("a"), text_block("b")]},
                text_block("thanks"),
            )
        ]
    )
    assert items == [
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        {"type": "function_call_output", "call_id": "call_2", "output": "a\n\nb"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "thanks"}]},
    ]
    mixed = input_of(
        [user_turn(text_block("before"), {"type": "tool_result", "tool_use_id": "c"}, text_block("after"))]
    )
    assert [item["type"] for item in mixed] == ["message", "function_call_output", "message"]
    assert mixed[1]["output"] == ""


@pytest.mark.parametrize(
    "content", ["boom", [text_block("boom")], [text_block("a"), text_block("b")], [], None, ""], ids=repr
)
@pytest.mark.parametrize("is_error", [True, False, None])
def test_text_tool_results_match_the_shared_rule(content: Any, is_error: bool | None) -> None:
    block: Json = {"type": "tool_result", "tool_use_id": "c", "content": content}
    if is_error is not None:
        block["is_error"] = is_error
    (item,) = input_of([user_turn(block)])
    assert item["output"] == tool_result_split(block, "x")[0]


def test_tool_result_with_images_and_documents_is_a_list() -> None:
    pdf = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}
    block = {"type": "tool_result", "tool_use_id": "c", "content": [text_block("see"), PNG, pdf]}
    (item,) = input_of([user_turn(block)])
    assert item["output"] == [
        {"type": "input_text", "text": "see"},
        PNG_PART,
        {"type": "input_file", "filename": "document.pdf", "file_data": "data:application/pdf;base64,JVBERi0="},
    ]
    (failed,) = input_of([user_turn({**block, "content": [PNG], "is_error": True})])
    assert failed["output"] == [{"type": "input_text", "text": "[tool error]"}, PNG_PART]


def test_unsupported_block_inside_a_tool_result_is_refused() -> None:
    block = {"type": "tool_result", "tool_use_id": "c", "content": [{"type": "tool_reference", "tool_name": "x"}]}
    with pytest.raises(InvalidRequestError, match=r"messages\.0\.content\.0\.content\.0: block type 'tool_reference'"):
        input_of([user_turn(block)])


# --- assistant turns ------------------------------------------------------------------------------------------


def test_assistant_text_and_tool_use_keep_both_in_order() -> None:
    long_name = "mcp__github__create_or_update_file_with_a_very_long_descriptive_tool_name"
    items = input_of(
        [
            assistant_turn(
                text_block("Let me check."),
                text_block(""),
                text_block("Both cities."),
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"location": "Paris"}},
                {"type": "tool_use", "id": "call_2", "name": long_name},
                text_block("Done."),
            )
        ]
    )
    assert items == [
        {
            "type": "message",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": "Let me check."},
                {"type": "output_text", "text": "Both cities."},
            ],
        },
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"location":"Paris"}'},
        {"type": "function_call", "call_id": "call_2", "name": toolname_encode(long_name), "arguments": "{}"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Done."}]},
    ]
    assert toolname_encode(long_name) != long_name
    assert input_of([{"role": "assistant", "content": "plain"}])[0]["content"] == [
        {"type": "output_text", "text": "plain"}
    ]


@pytest.mark.parametrize("kind", ["server_tool_use", "web_search_tool_result", "image"])
def test_unsupported_assistant_blocks_are_refused_by_name(kind: str) -> None:
    with pytest.raises(InvalidRequestError, match=rf"messages\.1\.content\.0: block type {kind!r}"):
        input_of([user_turn(text_block("hi")), assistant_turn({"type": kind})])


# --- thinking blocks echoed back ------------------------------------------------------------------------------


def _reasoning(summary: list[Json]) -> Json:
    return {"type": "reasoning", "id": RS_ID, "summary": summary, "encrypted_content": ENC}


def _turn(block: Json) -> list[Json]:
    call = {"type": "tool_use", "id": "call_1", "name": "f", "input": {}}
    return [user_turn(text_block("hi")), assistant_turn(block, call)]


def test_our_thinking_signature_restores_the_reasoning_item_before_the_output() -> None:
    block = {"type": "thinking", "thinking": "Plan.", "signature": sig(k="responses", id=RS_ID, enc=ENC)}
    items = input_of(_turn(block))
    assert items[1] == _reasoning([{"type": "summary_text", "text": "Plan."}])
    assert items[2]["type"] == "function_call"
    empty = input_of(_turn({**block, "thinking": ""}))
    assert empty[1] == _reasoning([])


def test_our_redacted_thinking_restores_the_reasoning_item_without_summary() -> None:
    block = {"type": "redacted_thinking", "data": sig(k="responses", id=RS_ID, enc=ENC)}
    assert input_of(_turn(block))[1] == _reasoning([])


@pytest.mark.parametrize(
    "block",
    [
        {
            "type": "thinking",
            "thinking": "Anthropic's",
            "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds",
        },
        {"type": "thinking", "thinking": "unsigned", "signature": ""},
        {"type": "thinking", "thinking": "no signature field"},
        {"type": "thinking", "thinking": "odd", "signature": 42},
        {"type": "thinking", "thinking": "chat kind", "signature": sig(k="openai_chat")},
        {"type": "thinking", "thinking": "no enc", "signature": sig(k="responses", id=RS_ID)},
        {"type": "thinking", "thinking": "no id", "signature": sig(k="responses", enc=ENC)},
        {
            "type": "thinking",
            "thinking": "forged",
            "signature": signature_mint({"k": "responses", "id": RS_ID, "enc": ENC}, b"other"),
        },
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"},
    ],
    ids=lambda b: str(b.get("thinking") or b["type"]),
)
def test_foreign_or_absent_signatures_drop_the_thinking(block: Json) -> None:
    assert [item["type"] for item in input_of(_turn(block))] == ["message", "function_call"]


def test_reasoning_is_not_restored_for_a_provider_without_thinking() -> None:
    block = {"type": "thinking", "thinking": "Plan.", "signature": sig(k="responses", id=RS_ID, enc=ENC)}
    assert [item["type"] for item in input_of(_turn(block), supports_thinking=False)] == ["message", "function_call"]
