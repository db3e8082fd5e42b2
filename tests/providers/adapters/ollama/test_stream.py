"""Decoding Ollama's NDJSON (and whole-JSON) answers into Anthropic stream events, on golden fixtures.

Fixture sources: fixtures/README.md (Ollama's docs/api.md, docs/api/errors.mdx, docs/capabilities/thinking.mdx).
Event shapes: https://docs.anthropic.com/en/api/messages-streaming.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest

from gateway.sse import Accumulator, StreamError
from providers.adapters.common.builder import Event
from providers.adapters.ollama.stream import tool_id_mint
from tests.providers.adapters.ollama.support import FIXTURES, SIGNATURE, decode, split

STREAMS = ["stream_text.ndjson", "stream_tools.ndjson", "stream_thinking.ndjson", "stream_error.ndjson"]


def message(content: list[dict[str, Any]], stop_reason: str, input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "model": "claude-opus-4-8",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


TOKYO = {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Tokyo"}}
EXPECTED = {
    "stream_text.ndjson": message([{"type": "text", "text": "The"}], "end_turn", 26, 282),
    "stream_tools.ndjson": message([TOKYO], "tool_use", 169, 15),
    "stream_thinking.ndjson": message(
        [
            {
                "type": "thinking",
                "thinking": (
                    "The user asks how many r are in strawberry. s-t-r-a-w-b-e-r-r-y: r at 3, 8, 9. That is 3."
                ),
                "signature": SIGNATURE,
            },
            {"type": "text", "text": 'There are **3** letter r\'s in "strawberry".'},
        ],
        "end_turn",
        18,
        93,
    ),
}


def fold(events: list[Event]) -> dict[str, Any]:
    accumulator = Accumulator()
    for event in events:
        accumulator.feed(event)
    return accumulator.result()


def lines(*objects: dict[str, Any], end: bytes = b"\n") -> bytes:
    return b"".join(orjson.dumps(o) + end for o in objects)


def chunk(message: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"model": "qwen3", "created_at": "2025-01-01T00:00:00Z", "done": False, **fields}
    if message is not None:
        out["message"] = {"role": "assistant", "content": "", **message}
    return out


def done(reason: str | None = "stop", message: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    out = chunk(message or {}, done=True, prompt_eval_count=11, eval_count=3, **fields)
    if reason is not None:
        out["done_reason"] = reason
    return out


# --- golden fixtures ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_golden_stream_folds_to_expected_message(name: str) -> None:
    assert fold(decode([(FIXTURES / name).read_bytes()])) == EXPECTED[name]


def test_golden_tool_stream_events() -> None:
    assert decode([(FIXTURES / "stream_tools.ndjson").read_bytes()]) == [
        {
            "type": "message_start",
            "message": {
                "id": "msg_test",
                "type": "message",
                "role": "assistant",
                "model": "claude-opus-4-8",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 5, "output_tokens": 0},
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {**TOKYO, "input": {}}},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": '{"city":"Tokyo"}'},
        },
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"input_tokens": 169, "output_tokens": 15},
        },
        {"type": "message_stop"},
    ]


def test_golden_thinking_stream_signs_the_block_on_close() -> None:
    events = decode([(FIXTURES / "stream_thinking.ndjson").read_bytes()])
    kinds = [(e["type"], e.get("delta", {}).get("type")) for e in events]
    assert kinds.index(("content_block_delta", "signature_delta")) == 7  # after the five thinking deltas
    assert kinds[8] == ("content_block_stop", None)


def test_golden_error_stream_ends_with_an_error_event() -> None:
    events = decode([(FIXTURES / "stream_error.ndjson").read_bytes()])
    assert events[-1] == {
        "type": "error",
        "error": {"type": "api_error", "message": "upstream: an error was encountered while running the model"},
    }
    assert "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta") == " Yes.Ican"
    with pytest.raises(StreamError, match="an error was encountered"):
        fold(events)


def test_golden_non_streaming_answer_replays_the_same_way() -> None:
    raw = (FIXTURES / "response_tools.json").read_bytes()  # pretty-printed, as a whole body
    events = decode(split(raw, 17), content_type="application/json; charset=utf-8")
    assert fold(events) == message([TOKYO], "tool_use", 169, 18)


@pytest.mark.parametrize("name", STREAMS)
@pytest.mark.parametrize("size", [1, 2, 3, 7, 13, 64, 1000])
def test_rechunking_gives_identical_events(name: str, size: int) -> None:
    raw = (FIXTURES / name).read_bytes()
    assert decode(split(raw, size)) == decode([raw])


@pytest.mark.parametrize("name", STREAMS)
def test_crlf_line_ends_and_blank_lines_are_accepted(name: str) -> None:
    raw = (FIXTURES / name).read_bytes()
    assert decode(split(raw.replace(b"\n", b"\r\n\r\n"), 5)) == decode([raw])


# --- stop reasons and usage ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "stop_reason"),
    [("stop", "end_turn"), ("length", "max_tokens"), (None, "end_turn"), ("load", "end_turn"), ("odd", "end_turn")],
)
def test_stop_reasons(reason: str | None, stop_reason: str) -> None:
    result = fold(decode([lines(chunk({"content": "Hi"}), done(reason))]))
    assert result["stop_reason"] == stop_reason
    assert result["usage"] == {"input_tokens": 11, "output_tokens": 3}


def test_tool_calls_stop_with_tool_use_unless_cut_by_length() -> None:
    call = {"function": {"name": "f", "arguments": {}}}
    assert fold(decode([lines(chunk({"tool_calls": [call]}), done("stop"))]))["stop_reason"] == "tool_use"
    assert fold(decode([lines(chunk({"tool_calls": [call]}), done("length"))]))["stop_reason"] == "max_tokens"


def test_missing_counts_keep_the_estimate() -> None:
    final = chunk(None, done=True, done_reason="stop")  # an older server's final line: no message, no counts
    result = fold(decode([lines(chunk({"content": "Hi"}), final)], input_tokens=42))
    assert result["usage"] == {"input_tokens": 42, "output_tokens": 0}


def test_load_answer_without_output() -> None:
    result = fold(decode([lines(done("load"))]))
    assert result["content"] == [] and result["stop_reason"] == "end_turn"


def test_content_on_the_final_line_and_thinking_with_content_in_one_line() -> None:
    first = chunk({"thinking": "hm", "content": None})  # a thinking-only line may carry no content at all
    both = chunk({"thinking": "m", "content": "A"})
    final = done("stop", message={"content": "B"})
    assert fold(decode([lines(first, both, final)]))["content"] == [
        {"type": "thinking", "thinking": "hmm", "signature": SIGNATURE},
        {"type": "text", "text": "AB"},
    ]


# --- tool calls ----------------------------------------------------------------------------------------------------


def test_tool_calls_get_minted_ids_and_whole_arguments() -> None:
    calls = [
        {"function": {"name": "a", "arguments": {"x": [1, 2]}}},
        {"function": {"name": "b", "arguments": '{"y": true}'}},  # a JSON string is taken as it is
    ]
    later = [{"function": {"name": "c"}}, {"function": {"name": "d", "arguments": ""}}]
    later.append({"function": {"name": "e", "arguments": ["not", "an", "object"]}})
    content = fold(
        decode(
            [
                lines(
                    chunk({"content": "Let me see."}),
                    chunk({"tool_calls": calls}),
                    chunk({"tool_calls": later}),
                    done(),
                )
            ]
        )
    )["content"]
    assert content == [
        {"type": "text", "text": "Let me see."},
        {"type": "tool_use", "id": "toolu_01", "name": "a", "input": {"x": [1, 2]}},
        {"type": "tool_use", "id": "toolu_02", "name": "b", "input": {"y": True}},
        {"type": "tool_use", "id": "toolu_03", "name": "c", "input": {}},
        {"type": "tool_use", "id": "toolu_04", "name": "d", "input": {}},
        {"type": "tool_use", "id": "toolu_05", "name": "e", "input": {}},
    ]


def test_default_tool_ids_look_like_anthropic_ids() -> None:
    first, second = tool_id_mint(), tool_id_mint()
    assert re.fullmatch(r"toolu_[0-9a-f]{24}", first) and first != second


@pytest.mark.parametrize("call", [{"function": {"arguments": {}}}, {"function": "f"}, "f"])
def test_a_tool_call_without_a_name_fails_the_stream(call: Any) -> None:
    events = decode([lines(chunk({"content": "x", "tool_calls": [call]}, done=True), chunk({"content": "ignored"}))])
    assert events[-1]["type"] == "error"
    assert "tool call without a name" in events[-1]["error"]["message"]
    assert not any(e["type"] == "message_delta" for e in events)


# --- broken streams ------------------------------------------------------------------------------------------------


def test_stream_without_done_line_fails() -> None:
    events = decode([lines(chunk({"content": "partial"}))])
    assert events[-1] == {
        "type": "error",
        "error": {"type": "api_error", "message": "upstream stream ended before its final (done) line"},
    }
    assert decode([b""]) == [events[-1]]


def test_last_line_without_newline_is_decoded_on_flush() -> None:
    raw = lines(chunk({"content": "Hi"}), done())[:-1]
    assert fold(decode([raw]))["content"] == [{"type": "text", "text": "Hi"}]


def test_lines_after_the_end_are_ignored() -> None:
    events = decode([lines(chunk({"content": "Hi"}), done(), chunk({"content": "late"}), {"error": "late"})])
    assert events[-1] == {"type": "message_stop"}
    after_error = decode([lines({"error": "boom"}, chunk({"content": "late"}))])
    assert after_error == [{"type": "error", "error": {"type": "api_error", "message": "upstream: boom"}}]


@pytest.mark.parametrize(("raw", "message"), [(b"{not json\n", "invalid JSON"), (b"[1, 2]\n", "not an object")])
@pytest.mark.parametrize("content_type", ["application/x-ndjson", "application/json"])
def test_unparsable_answers_raise_stream_error(raw: bytes, message: str, content_type: str) -> None:
    with pytest.raises(StreamError, match=message):
        decode([raw], content_type=content_type)


def test_whole_json_error_object_with_http_200() -> None:
    events = decode([b'{"error": "model is loading"}'], content_type="application/json")
    assert events == [{"type": "error", "error": {"type": "api_error", "message": "upstream: model is loading"}}]
