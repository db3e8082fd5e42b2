"""EventBuilder (builder.py): a well-formed Anthropic event stream from another backend's fragments.

Event shapes: https://docs.anthropic.com/en/api/messages-streaming.
"""

from __future__ import annotations

from typing import Any

from providers.adapters.common.builder import EventBuilder
from tests.providers.adapters.openai_chat.helpers import (
    MESSAGE_STOP,
    Json,
    block_start,
    block_stop,
    fold,
    json_delta,
    message_delta,
    signature_delta,
    text_delta,
    text_start,
    thinking_delta,
    thinking_start,
    tool_start,
)

START: Json = {
    "type": "message_start",
    "message": {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 0},
    },
}


def builder(signed: bool = True, **kwargs: Any) -> EventBuilder:
    return EventBuilder(
        message_id="msg_1",
        model="claude-x",
        input_tokens=10,
        signer=(lambda text: f"sig({text})") if signed else None,
        **kwargs,
    )


def test_start_is_idempotent_and_may_set_the_input_estimate() -> None:
    b = builder()
    assert not b.started
    assert b.start() == [START]
    assert b.started
    assert b.start() == [] and b.start(99) == []
    late = builder()
    assert late.start(55)[0]["message"]["usage"] == {"input_tokens": 55, "output_tokens": 0}


def test_default_input_tokens_and_no_signer() -> None:
    b = EventBuilder(message_id="m", model="x")
    assert b.start()[0]["message"]["usage"] == {"input_tokens": 0, "output_tokens": 0}


def test_text_opens_once_and_empty_text_is_nothing() -> None:
    b = builder()
    assert b.text("") == []
    assert b.text("Hel") == [START, text_start(0), text_delta(0, "Hel")]
    assert b.text("lo") == [text_delta(0, "lo")]
    assert b.thinking("") == []


def test_switching_between_text_and_thinking_closes_and_signs() -> None:
    b = builder()
    events = b.thinking("a") + b.thinking("b") + b.text("t") + b.thinking("c") + b.finish("end_turn")
    assert events == [
        START,
        thinking_start(0),
        thinking_delta(0, "a"),
        thinking_delta(0, "b"),
        signature_delta(0, "sig(ab)"),  # implicit close: signed with all the block's text
        block_stop(0),
        text_start(1),
        text_delta(1, "t"),
        block_stop(1),
        thinking_start(2),
        thinking_delta(2, "c"),
        signature_delta(2, "sig(c)"),  # a new block signs only its own text
        block_stop(2),
        message_delta("end_turn", {"input_tokens": 10, "output_tokens": 0}),
        MESSAGE_STOP,
    ]
    assert fold(events)["content"] == [
        {"type": "thinking", "thinking": "ab", "signature": "sig(ab)"},
        {"type": "text", "text": "t"},
        {"type": "thinking", "thinking": "c", "signature": "sig(c)"},
    ]


def test_explicit_signature_replaces_the_minted_one() -> None:
    b = builder()
    events = b.thinking("x") + b.signature("backend-sig") + b.signature("") + b.text("y")
    assert events[-4:] == [signature_delta(0, "backend-sig"), block_stop(0), text_start(1), text_delta(1, "y")]
    assert "sig(x)" not in str(events)
    # ... and only for that block: the next thinking block is minted again.
    more = b.thinking("z") + b.finish("end_turn")
    assert signature_delta(2, "sig(z)") in more


def test_signature_without_an_open_thinking_block_is_ignored() -> None:
    b = builder()
    assert b.signature("s") == []
    b.text("t")
    assert b.signature("s") == []


def test_thinking_without_a_signer_is_closed_unsigned() -> None:
    b = builder(signed=False)
    events = b.thinking("x") + b.finish("end_turn")
    assert [e for e in events if e.get("delta", {}).get("type") == "signature_delta"] == []
    assert fold(events)["content"] == [{"type": "thinking", "thinking": "x", "signature": ""}]


def test_redacted_thinking_is_a_whole_block() -> None:
    b = builder()
    events = b.text("a") + b.redacted_thinking("opaque") + b.text("b")
    assert events == [
        START,
        text_start(0),
        text_delta(0, "a"),
        block_stop(0),
        block_start(1, {"type": "redacted_thinking", "data": "opaque"}),
        block_stop(1),
        text_start(2),
        text_delta(2, "b"),
    ]
    fresh = builder()
    assert fresh.redacted_thinking("d")[:2] == [START, block_start(0, {"type": "redacted_thinking", "data": "d"})]


def test_tool_calls_by_key_with_fragments_and_late_fragments() -> None:
    b = builder()
    assert not b.has_tool_calls
    events = b.tool_call(0, call_id="c0", name="Read") + b.tool_call(0, arguments='{"a":')
    events += b.tool_call("k1", call_id="c1", name="Grep", arguments='{"p": 1}')
    events += b.tool_call(0, arguments=" 2}")  # its block is closed already
    events += b.tool_call(0, arguments="")
    events += b.finish("tool_use")
    assert b.has_tool_calls
    assert events == [
        START,
        tool_start(0, "c0", "Read"),
        json_delta(0, '{"a":'),
        block_stop(0),
        tool_start(1, "c1", "Grep"),
        json_delta(1, '{"p": 1}'),
        json_delta(0, " 2}"),
        block_stop(1),
        message_delta("tool_use", {"input_tokens": 10, "output_tokens": 0}),
        MESSAGE_STOP,
    ]


def test_tool_call_without_a_name_is_ignored() -> None:
    b = builder()
    assert b.tool_call(0, call_id="c", arguments='{"x": 1}') == []
    assert not b.started and not b.has_tool_calls


def test_finish_closes_everything_merges_usage_and_is_idempotent() -> None:
    b = builder()
    b.text("t")
    events = b.finish(
        "stop_sequence",
        stop_sequence="###",
        usage={"output_tokens": 5, "cache_read_input_tokens": None, "input_tokens": 3},
    )  # type: ignore[dict-item]
    assert events == [
        block_stop(0),
        message_delta("stop_sequence", {"input_tokens": 3, "output_tokens": 5}, stop_sequence="###"),
        MESSAGE_STOP,
    ]
    assert b.finished
    assert b.finish("end_turn") == []


def test_finish_without_anything_starts_the_message() -> None:
    b = builder()
    assert b.finish("end_turn", usage={}) == [
        START,
        message_delta("end_turn", {"input_tokens": 10, "output_tokens": 0}),
        MESSAGE_STOP,
    ]


def test_fail_ends_with_an_error_event_and_no_finish() -> None:
    b = builder()
    b.text("partial")
    assert b.fail("overloaded_error", "busy") == [
        {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
    ]
    assert b.finished
    assert b.finish("end_turn") == []


def test_close_block_closes_the_open_block_now() -> None:
    b = builder()
    assert b.close_block() == []
    events = b.thinking("x") + b.close_block() + b.close_block() + b.thinking("y") + b.close_block()
    assert events == [
        START,
        thinking_start(0),
        thinking_delta(0, "x"),
        signature_delta(0, "sig(x)"),
        block_stop(0),
        thinking_start(1),  # a new block, even of the same kind
        thinking_delta(1, "y"),
        signature_delta(1, "sig(y)"),
        block_stop(1),
    ]
    assert b.tool_call("a", call_id="c", name="T", arguments="{}")[0] == tool_start(2, "c", "T")
    assert b.close_block() == [block_stop(2)]
    assert b.tool_call("a", arguments="") == []  # the key still maps to its (closed) block
