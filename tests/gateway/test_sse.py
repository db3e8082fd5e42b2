"""gateway.sse: the Anthropic SSE encoder, the Accumulator that folds events into a Message, and message_to_events.

Event shapes: https://platform.claude.com/docs/en/build-with-claude/streaming
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from gateway.sse import Accumulator, StreamError, encode, message_to_events
from providers.adapters.sse import SseParser

START = {
    "type": "message_start",
    "message": {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": "claude-opus-5-5",
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 25, "output_tokens": 1},
    },
}


def _fold(events: list[dict[str, Any]]) -> dict[str, Any]:
    acc = Accumulator()
    for event in events:
        acc.feed(event)
    return acc.result()


def _block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def _delta(index: int, delta: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": delta}


def _stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


# --- encode ---------------------------------------------------------------------------------------------------


def test_encode_writes_the_event_line_then_compact_json_then_a_blank_line() -> None:
    assert encode({"type": "message_stop"}) == b'event: message_stop\ndata: {"type":"message_stop"}\n\n'


def test_encode_keeps_non_ascii_and_newlines_inside_one_data_line() -> None:
    event = _delta(0, {"type": "text_delta", "text": "a\nb — ü"})
    encoded = encode(event)
    assert encoded.count(b"\n") == 3  # "event:" line, "data:" line, blank line: the text's newline is escaped
    assert encoded.startswith(b"event: content_block_delta\ndata: ")
    assert orjson.loads(encoded.split(b"data: ", 1)[1]) == event


@pytest.mark.parametrize(
    "kind",
    [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
        "error",
        "some_future_event",  # not one of the pre-encoded event lines
        7,  # not even a string: written as str() writes it
    ],
)
def test_encode_of_every_event_type_is_the_plain_concatenation(kind: object) -> None:
    event = {"type": kind, "index": 0}
    assert encode(event) == b"event: " + str(kind).encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


def test_encode_of_a_str_subclass_type_writes_its_str() -> None:
    class Kind(str):
        def __str__(self) -> str:
            return "shown"

    event = {"type": Kind("ping")}
    assert encode(event) == b'event: shown\ndata: {"type":"ping"}\n\n'


def test_encoded_events_parse_back_with_the_sse_parser() -> None:
    events = [START, _block_start(0, {"type": "text", "text": ""}), {"type": "ping"}, {"type": "message_stop"}]
    parsed = SseParser().feed(b"".join(encode(e) for e in events))
    assert [(p.event, orjson.loads(p.data)) for p in parsed] == [(e["type"], e) for e in events]


# --- StreamError ----------------------------------------------------------------------------------------------


def test_stream_error_keeps_the_error_and_uses_its_message() -> None:
    error = StreamError({"type": "overloaded_error", "message": "Overloaded"})
    assert str(error) == "Overloaded"
    assert error.error == {"type": "overloaded_error", "message": "Overloaded"}


def test_stream_error_without_a_message() -> None:
    assert str(StreamError({})) == "upstream stream error"


# --- Accumulator ----------------------------------------------------------------------------------------------


def test_text_deltas_are_concatenated() -> None:
    message = _fold(
        [
            START,
            _block_start(0, {"type": "text", "text": ""}),
            {"type": "ping"},
            _delta(0, {"type": "text_delta", "text": "Hello"}),
            _delta(0, {"type": "text_delta", "text": "!"}),
            _stop(0),
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 15},
            },
            {"type": "message_stop"},
        ]
    )
    assert message == {
        **START["message"],
        "content": [{"type": "text", "text": "Hello!"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 25, "output_tokens": 15},
    }


def test_a_delta_onto_a_block_without_its_field_starts_from_empty() -> None:
    message = _fold(
        [
            START,
            _block_start(0, {"type": "text"}),
            _delta(0, {"type": "text_delta", "text": "a"}),
            _block_start(1, {"type": "thinking"}),
            _delta(1, {"type": "thinking_delta", "thinking": "t"}),
            _delta(1, {"type": "signature_delta", "signature": "s"}),
            _delta(0, {"type": "text_delta"}),  # a delta without its payload adds nothing
        ]
    )
    assert message["content"] == [
        {"type": "text", "text": "a"},
        {"type": "thinking", "thinking": "t", "signature": "s"},
    ]


def test_tool_input_json_is_assembled_across_deltas_and_parsed_at_block_stop() -> None:
    acc = Accumulator()
    acc.feed(START)
    acc.feed(_block_start(0, {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}))
    for part in ["", '{"location":', ' "San', " Francisc", "o,", ' CA"}']:
        acc.feed(_delta(0, {"type": "input_json_delta", "partial_json": part}))
    assert acc.message is not None
    assert acc.message["content"][0]["input"] == {}  # not parsed until the block stops
    acc.feed(_stop(0))
    assert acc.message["content"][0]["input"] == {"location": "San Francisco, CA"}
    assert acc.result()["content"] == [
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "San Francisco, CA"}}
    ]


def test_tool_input_of_only_empty_deltas_is_an_empty_object() -> None:
    message = _fold(
        [
            START,
            _block_start(0, {"type": "tool_use", "id": "t", "name": "n", "input": {}}),
            _delta(0, {"type": "input_json_delta", "partial_json": ""}),
            _delta(0, {"type": "input_json_delta"}),
            _stop(0),
        ]
    )
    assert message["content"][0]["input"] == {}


def test_tool_use_without_deltas_keeps_the_input_from_its_start() -> None:
    message = _fold([START, _block_start(0, {"type": "tool_use", "id": "t", "name": "n", "input": {"a": 1}}), _stop(0)])
    assert message["content"][0]["input"] == {"a": 1}


def test_tool_input_of_two_blocks_is_kept_apart() -> None:
    message = _fold(
        [
            START,
            _block_start(0, {"type": "tool_use", "id": "a", "name": "n", "input": {}}),
            _block_start(1, {"type": "tool_use", "id": "b", "name": "n", "input": {}}),
            _delta(0, {"type": "input_json_delta", "partial_json": '{"x":'}),
            _delta(1, {"type": "input_json_delta", "partial_json": '{"y":'}),
            _delta(0, {"type": "input_json_delta", "partial_json": "1}"}),
            _delta(1, {"type": "input_json_delta", "partial_json": "2}"}),
            _stop(1),
            _stop(0),
        ]
    )
    assert [block["input"] for block in message["content"]] == [{"x": 1}, {"y": 2}]


def test_result_parses_tool_input_of_a_block_that_never_stopped() -> None:
    message = _fold(
        [
            START,
            _block_start(0, {"type": "tool_use", "id": "t", "name": "n", "input": {}}),
            _delta(0, {"type": "input_json_delta", "partial_json": '{"a": [1, 2]}'}),
        ]
    )
    assert message["content"][0]["input"] == {"a": [1, 2]}


def test_invalid_tool_input_json_is_judged_at_the_end_not_at_block_stop() -> None:
    # Interleaved parallel calls may complete a block's arguments after its stop, so the stop does not raise;
    # the result does if the JSON is still incomplete.
    acc = Accumulator()
    acc.feed(START)
    acc.feed(_block_start(0, {"type": "tool_use", "id": "t", "name": "n", "input": {}}))
    acc.feed(_delta(0, {"type": "input_json_delta", "partial_json": '{"location": "San Fra'}))
    acc.feed(_stop(0))
    with pytest.raises(StreamError) as info:
        acc.result()
    assert info.value.error["type"] == "api_error"
    assert "invalid tool input JSON" in info.value.error["message"]
    assert isinstance(info.value.__cause__, orjson.JSONDecodeError)


def test_invalid_tool_input_json_raises_stream_error_at_result() -> None:
    acc = Accumulator()
    acc.feed(START)
    acc.feed(_block_start(0, {"type": "tool_use", "id": "t", "name": "n", "input": {}}))
    acc.feed(_delta(0, {"type": "input_json_delta", "partial_json": "{"}))
    with pytest.raises(StreamError, match="invalid tool input JSON"):
        acc.result()


def test_thinking_and_signature_deltas() -> None:
    message = _fold(
        [
            START,
            _block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
            _delta(0, {"type": "thinking_delta", "thinking": "1071 = 2 \u00d7 462 + 147"}),
            _delta(0, {"type": "thinking_delta", "thinking": "\n462 = 3 \u00d7 147 + 21"}),
            _delta(0, {"type": "signature_delta", "signature": "EqQBCgIYAhIM"}),
            _delta(0, {"type": "signature_delta", "signature": "1gbcDa9G"}),
            _stop(0),
        ]
    )
    assert message["content"] == [
        {
            "type": "thinking",
            "thinking": "1071 = 2 \u00d7 462 + 147\n462 = 3 \u00d7 147 + 21",
            "signature": "EqQBCgIYAhIM1gbcDa9G",
        }
    ]


def test_citations_deltas_are_appended_to_the_text_block() -> None:
    first = {"type": "char_location", "cited_text": "The grass is green.", "document_index": 0}
    second = {"type": "char_location", "cited_text": "The sky is blue.", "document_index": 0}
    message = _fold(
        [
            START,
            _block_start(0, {"type": "text", "text": ""}),
            _delta(0, {"type": "text_delta", "text": "According to the document"}),
            _delta(0, {"type": "citations_delta", "citation": first}),
            _delta(0, {"type": "citations_delta", "citation": second}),
            _stop(0),
        ]
    )
    assert message["content"] == [{"type": "text", "text": "According to the document", "citations": [first, second]}]


def test_citations_delta_onto_a_block_that_started_with_null_citations() -> None:
    citation = {"type": "char_location", "cited_text": "x", "document_index": 0}
    message = _fold(
        [
            START,
            _block_start(0, {"type": "text", "text": "", "citations": None}),
            _delta(0, {"type": "citations_delta", "citation": citation}),
            _stop(0),
        ]
    )
    assert message["content"][0]["citations"] == [citation]


def test_unknown_and_missing_delta_types_are_ignored() -> None:
    message = _fold(
        [
            START,
            _block_start(0, {"type": "text", "text": "x"}),
            _delta(0, {"type": "some_future_delta", "text": "ignored"}),
            {"type": "content_block_delta", "index": 0},  # no delta at all
            {"type": "content_block_delta", "index": 0, "delta": None},
            _stop(0),
        ]
    )
    assert message["content"] == [{"type": "text", "text": "x"}]


def test_index_defaults() -> None:
    # content_block_start without an index appends; delta and stop without one address block 0.
    message = _fold(
        [
            START,
            {"type": "content_block_start", "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_start", "content_block": {"type": "tool_use", "id": "t", "name": "n", "input": {}}},
            {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "hi"}},
            {"type": "content_block_stop"},
        ]
    )
    assert message["content"] == [
        {"type": "text", "text": "hi"},
        {"type": "tool_use", "id": "t", "name": "n", "input": {}},
    ]


def test_a_start_beyond_the_end_fills_the_gap_and_a_start_without_a_block_is_empty() -> None:
    message = _fold(
        [START, _block_start(2, {"type": "text", "text": "c"}), {"type": "content_block_start", "index": 0}]
    )
    assert message["content"] == [{}, {}, {"type": "text", "text": "c"}]


def test_a_start_for_an_existing_index_replaces_the_block() -> None:
    message = _fold(
        [START, _block_start(0, {"type": "text", "text": "a"}), _block_start(0, {"type": "text", "text": "b"})]
    )
    assert message["content"] == [{"type": "text", "text": "b"}]


def test_a_block_that_arrives_whole_in_its_start_event_is_kept() -> None:
    redacted = {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"}
    message = _fold([START, _block_start(0, redacted), _stop(0)])
    assert message["content"] == [redacted]


def test_delta_for_an_unknown_index_raises_stream_error() -> None:
    acc = Accumulator()
    acc.feed(START)
    acc.feed(_block_start(0, {"type": "text", "text": ""}))
    with pytest.raises(StreamError) as info:
        acc.feed(_delta(1, {"type": "text_delta", "text": "x"}))
    assert info.value.error == {"type": "api_error", "message": "delta for unknown content block 1"}


def test_delta_with_no_blocks_at_all_raises_stream_error() -> None:
    acc = Accumulator()
    acc.feed(START)
    with pytest.raises(StreamError, match="unknown content block 0"):
        acc.feed(_delta(0, {"type": "text_delta", "text": "x"}))


def test_content_block_stop_for_an_index_without_tool_json_is_a_no_op() -> None:
    acc = Accumulator()
    acc.feed(START)
    acc.feed(_stop(5))  # nothing pending: not even the message's content is touched
    assert acc.result()["content"] == []


def test_message_delta_merges_top_level_fields_and_usage() -> None:
    message = _fold(
        [
            START,
            {
                "type": "message_delta",
                "delta": {"stop_reason": "max_tokens", "stop_sequence": None, "container": {"id": "c"}},
            },
            {
                "type": "message_delta",
                "delta": {},
                # cumulative usage: values overwrite, keys are added, None never erases a known count
                "usage": {"output_tokens": 89, "input_tokens": None, "cache_read_input_tokens": 5},
            },
            {"type": "message_delta", "delta": None, "usage": None},
            {"type": "message_delta"},
        ]
    )
    assert message["stop_reason"] == "max_tokens"
    assert message["container"] == {"id": "c"}
    assert message["usage"] == {"input_tokens": 25, "output_tokens": 89, "cache_read_input_tokens": 5}


def test_message_start_without_usage_or_content() -> None:
    message = _fold([{"type": "message_start", "message": {"id": "m", "content": None}}, {"type": "message_stop"}])
    assert message == {"id": "m", "content": [], "usage": {}}


def test_message_start_without_a_message() -> None:
    assert _fold([{"type": "message_start"}]) == {"content": [], "usage": {}}
    assert _fold([{"type": "message_start", "message": None}]) == {"content": [], "usage": {}}


def test_message_start_is_copied_not_aliased() -> None:
    start = copy.deepcopy(START)
    acc = Accumulator()
    acc.feed(start)
    acc.feed(_block_start(0, {"type": "text", "text": ""}))
    acc.feed({"type": "message_delta", "usage": {"output_tokens": 3}})
    acc.result()
    assert start == START


def test_error_event_raises_stream_error_with_the_upstream_error() -> None:
    acc = Accumulator()
    acc.feed(START)
    with pytest.raises(StreamError) as info:
        acc.feed({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    assert info.value.error == {"type": "overloaded_error", "message": "Overloaded"}
    assert str(info.value) == "Overloaded"


def test_error_event_without_details_still_raises() -> None:
    with pytest.raises(StreamError, match="upstream stream error") as info:
        Accumulator().feed({"type": "error"})
    assert info.value.error == {}


def test_events_that_carry_nothing_to_fold_are_ignored_even_before_message_start() -> None:
    acc = Accumulator()
    for event in ({"type": "ping"}, {"type": "message_stop"}, {"type": "some_future_event"}, {}):
        acc.feed(event)
    assert acc.message is None


@pytest.mark.parametrize(
    "event",
    [
        _block_start(0, {"type": "text", "text": ""}),
        _delta(0, {"type": "text_delta", "text": "x"}),
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}},
    ],
    ids=["content_block_start", "content_block_delta", "message_delta"],
)
def test_events_before_message_start_raise_stream_error(event: dict[str, Any]) -> None:
    with pytest.raises(StreamError) as info:
        Accumulator().feed(event)
    assert info.value.error == {"type": "api_error", "message": "upstream stream did not start with message_start"}


def test_result_before_message_start_raises_stream_error() -> None:
    with pytest.raises(StreamError, match="did not start with message_start"):
        Accumulator().result()


def test_a_stop_before_message_start_is_tolerated_but_result_still_raises() -> None:
    acc = Accumulator()
    acc.feed(_stop(0))  # nothing pending, so nothing to check yet
    with pytest.raises(StreamError):
        acc.result()


# --- message_to_events ----------------------------------------------------------------------------------------

USAGE = {"input_tokens": 472, "cache_read_input_tokens": 100, "output_tokens": 89}


def _message(content: list[dict[str, Any]], stop_reason: str = "end_turn") -> dict[str, Any]:
    return {
        "id": "msg_014p7gG3wDgGV9EUtLvnow3U",
        "type": "message",
        "role": "assistant",
        "model": "claude-opus-5",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": dict(USAGE),
    }


ROUND_TRIPS = {
    "text": _message([{"type": "text", "text": "Hello!"}]),
    "empty text": _message([{"type": "text", "text": ""}]),
    "text with citations": _message(
        [
            {
                "type": "text",
                "text": "green",
                "citations": [{"type": "char_location", "cited_text": "The grass is green."}],
            }
        ]
    ),
    "tool_use": _message(
        [
            {"type": "text", "text": "I'll check the current weather in San Francisco for you."},
            {
                "type": "tool_use",
                "id": "toolu_01A09q90qw90lq917835lq9",
                "name": "get_weather",
                "input": {"location": "San Francisco, CA", "unit": "celsius", "nested": {"a": [1, 2.5, None, True]}},
            },
        ],
        stop_reason="tool_use",
    ),
    "tool_use with empty input": _message([{"type": "tool_use", "id": "t", "name": "n", "input": {}}], "tool_use"),
    "thinking with signature": _message(
        [
            {
                "type": "thinking",
                "thinking": "I need to find the GCD of 1071 and 462.",
                "signature": "EqQBCgIYAhIM1gbcDa9G",
            },
            {"type": "text", "text": "The greatest common divisor of 1071 and 462 is **21**."},
        ]
    ),
    "thinking omitted, signature only": _message([{"type": "thinking", "thinking": "", "signature": "EqQBCgIYAhIM"}]),
    "redacted_thinking": _message(
        [
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"},
            {"type": "text", "text": "ok"},
        ]
    ),
    "server tool result": _message(
        [{"type": "web_search_tool_result", "tool_use_id": "srvtoolu_014hJH82Qum7Td6UV8gDXThB", "content": []}]
    ),
    "no content": _message([]),
    "stop_sequence": {**_message([{"type": "text", "text": "a"}], "stop_sequence"), "stop_sequence": "\n\nHuman:"},
}


@pytest.mark.parametrize("message", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_message_to_events_round_trips_through_the_accumulator(message: dict[str, Any]) -> None:
    original = copy.deepcopy(message)
    events = message_to_events(message)
    assert message == original  # the input is not mutated
    assert _fold(events) == message
    # The same events survive the wire: encode, parse, decode.
    parsed = SseParser().feed(b"".join(encode(event) for event in events))
    assert _fold([orjson.loads(item.data) for item in parsed]) == message


def test_message_to_events_sequence_for_text_and_tool_use() -> None:
    events = message_to_events(ROUND_TRIPS["tool_use"])
    assert [(e["type"], e.get("index"), (e.get("delta") or {}).get("type")) for e in events] == [
        ("message_start", None, None),
        ("content_block_start", 0, None),
        ("content_block_delta", 0, "text_delta"),
        ("content_block_stop", 0, None),
        ("content_block_start", 1, None),
        ("content_block_delta", 1, "input_json_delta"),
        ("content_block_stop", 1, None),
        ("message_delta", None, None),
        ("message_stop", None, None),
    ]
    start = events[0]["message"]
    assert start["content"] == []
    assert start["stop_reason"] is None
    assert start["stop_sequence"] is None
    assert start["usage"] == {**USAGE, "output_tokens": 0}
    assert events[1]["content_block"] == {"type": "text", "text": ""}
    assert events[4]["content_block"]["input"] == {}
    assert events[7] == {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"output_tokens": 89},
    }


def test_message_to_events_sends_no_empty_deltas() -> None:
    message = _message([{"type": "text", "text": ""}, {"type": "thinking", "thinking": "", "signature": ""}])
    assert [e["type"] for e in message_to_events(message)] == [
        "message_start",
        "content_block_start",
        "content_block_stop",
        "content_block_start",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


def test_message_to_events_thinking_start_block_is_empty_and_signature_comes_last() -> None:
    events = message_to_events(ROUND_TRIPS["thinking with signature"])
    assert events[1]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert [events[2]["delta"]["type"], events[3]["delta"]["type"], events[4]["type"]] == [
        "thinking_delta",
        "signature_delta",
        "content_block_stop",
    ]


def test_message_to_events_tool_use_without_input() -> None:
    events = message_to_events(_message([{"type": "tool_use", "id": "t", "name": "n"}], "tool_use"))
    assert events[2]["delta"] == {"type": "input_json_delta", "partial_json": "{}"}
    assert _fold(events)["content"] == [{"type": "tool_use", "id": "t", "name": "n", "input": {}}]


def test_message_to_events_for_a_bare_message() -> None:
    # No content, usage, stop_reason or stop_sequence keys at all: the stream still has the full shape.
    events = message_to_events({"id": "m", "type": "message"})
    assert events == [
        {
            "type": "message_start",
            "message": {
                "id": "m",
                "type": "message",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"output_tokens": 0},
            },
        },
        {"type": "message_delta", "delta": {"stop_reason": None, "stop_sequence": None}, "usage": {"output_tokens": 0}},
        {"type": "message_stop"},
    ]
    assert _fold(events) == {
        "id": "m",
        "type": "message",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"output_tokens": 0},
    }


def test_feed_safely_and_result_or_none_never_raise() -> None:
    broken = Accumulator()
    broken.feed_safely({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}})
    assert broken.broken and broken.result_or_none() is None
    assert Accumulator().result_or_none() is None
    bad_json = Accumulator()
    bad_json.feed_safely(START)
    bad_json.feed_safely(_block_start(0, {"type": "tool_use", "id": "t", "name": "n", "input": {}}))
    bad_json.feed_safely(_delta(0, {"type": "input_json_delta", "partial_json": '{"unfinished'}))
    assert not bad_json.broken and bad_json.result_or_none() is None
    good = Accumulator()
    good.feed_safely(START)
    assert good.result_or_none() is not None
