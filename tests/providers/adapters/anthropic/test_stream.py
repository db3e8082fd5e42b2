"""Decoding an Anthropic-format upstream's answer into stream events, on golden fixtures.

The fixtures are Anthropic's documented examples copied verbatim (each ``.sse`` cites its section):
https://platform.claude.com/docs/en/build-with-claude/streaming for the streams, and the "Hello!" response of
https://platform.claude.com/docs/en/build-with-claude/working-with-messages for ``message.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.sse import Accumulator, StreamError, encode
from providers.adapters.anthropic.stream import AnthropicJsonDecoder, AnthropicSseDecoder

FIXTURES = Path(__file__).parent / "fixtures"
STREAMS = ["stream_text.sse", "stream_tool_use.sse", "stream_thinking.sse", "stream_error.sse"]

EXPECTED_MESSAGES: dict[str, dict[str, Any]] = {
    "stream_text.sse": {
        "id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": "Hello!"}],
        "model": "claude-opus-5-5",
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 25, "output_tokens": 15},
    },
    "stream_tool_use.sse": {
        "id": "msg_014p7gG3wDgGV9EUtLvnow3U",
        "type": "message",
        "role": "assistant",
        "model": "claude-opus-5",
        "stop_sequence": None,
        "usage": {"input_tokens": 472, "output_tokens": 89},
        "content": [
            {"type": "text", "text": "Okay, let's check the weather for San Francisco, CA:"},
            {
                "type": "tool_use",
                "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                "name": "get_weather",
                "input": {"location": "San Francisco, CA"},
            },
        ],
        "stop_reason": "tool_use",
    },
    "stream_thinking.sse": {
        "id": "msg_01...",
        "type": "message",
        "role": "assistant",
        "content": [
            {
                "type": "thinking",
                "thinking": (
                    "I need to find the GCD of 1071 and 462 using the Euclidean algorithm.\n\n1071 = 2 \u00d7 462 + 147"
                    "\n462 = 3 \u00d7 147 + 21\n147 = 7 \u00d7 21 + 0\nThe remainder is 0, so GCD(1071, 462) = 21."
                ),
                "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds...",
            },
            {"type": "text", "text": "The greatest common divisor of 1071 and 462 is **21**."},
        ],
        "model": "claude-opus-5-5",
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {},  # the documented thinking stream reports no usage
    },
}

EXPECTED_TYPES = {
    "stream_text.sse": [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ],
    "stream_tool_use.sse": [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 13,
        "content_block_stop",
        "content_block_start",
        *["content_block_delta"] * 6,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ],
    "stream_thinking.sse": [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 5,
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ],
    "stream_error.sse": ["message_start", "content_block_start", "ping", "content_block_delta", "error"],
}


def _fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _chunkings(data: bytes) -> dict[str, list[bytes]]:
    out = {"whole": [data], "1 byte": [data[i : i + 1] for i in range(len(data))]}
    for width in (2, 3, 7, 64, 333, 1000):
        out[f"{width} bytes"] = [data[i : i + width] for i in range(0, len(data), width)]
    # Uneven cuts that wander through the stream (a fixed pattern, so a failure reproduces).
    cuts, position, step = [], 0, 1
    while position < len(data):
        cuts.append(data[position : position + step])
        position += step
        step = step * 7 % 97 + 1
    out["uneven"] = cuts
    return out


def _decode(chunks: list[bytes]) -> list[dict[str, Any]]:
    decoder = AnthropicSseDecoder()
    events: list[dict[str, Any]] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events + decoder.flush()


def _fold(events: list[dict[str, Any]]) -> dict[str, Any]:
    acc = Accumulator()
    for event in events:
        acc.feed(event)
    return acc.result()


def _documented_events(name: str) -> list[dict[str, Any]]:
    """The JSON of each ``data:`` line, read without the SSE parser: what the decoder must produce."""
    lines = _fixture(name).decode().splitlines()
    return [orjson.loads(line[len("data: ") :]) for line in lines if line.startswith("data: ")]


# --- AnthropicSseDecoder on the golden fixtures ---------------------------------------------------------------


@pytest.mark.parametrize("name", STREAMS)
def test_fixture_decodes_to_the_documented_events(name: str) -> None:
    events = _decode([_fixture(name)])
    assert events == _documented_events(name)
    assert [event["type"] for event in events] == EXPECTED_TYPES[name]


@pytest.mark.parametrize("name", STREAMS)
def test_every_chunking_gives_the_same_events(name: str) -> None:
    data = _fixture(name)
    expected = _decode([data])
    for label, chunks in _chunkings(data).items():
        assert b"".join(chunks) == data
        assert _decode(chunks) == expected, label


@pytest.mark.parametrize("newline", [b"\r\n", b"\r"], ids=["CRLF", "CR"])
@pytest.mark.parametrize("name", STREAMS)
def test_other_line_endings_give_the_same_events(name: str, newline: bytes) -> None:
    data = _fixture(name)
    expected = _decode([data])
    converted = data.replace(b"\n", newline)
    for label, chunks in _chunkings(converted).items():
        assert _decode(chunks) == expected, label


@pytest.mark.parametrize("name", ["stream_text.sse", "stream_tool_use.sse", "stream_thinking.sse"])
def test_fixture_folds_to_the_expected_message(name: str) -> None:
    for label, chunks in _chunkings(_fixture(name)).items():
        assert _fold(_decode(chunks)) == EXPECTED_MESSAGES[name], label


def test_error_fixture_raises_the_upstream_error_when_folded() -> None:
    events = _decode([_fixture("stream_error.sse")])
    acc = Accumulator()
    for event in events[:-1]:
        acc.feed(event)
    with pytest.raises(StreamError) as info:
        acc.feed(events[-1])
    assert info.value.error == {"type": "overloaded_error", "message": "Overloaded"}
    assert str(info.value) == "Overloaded"


def test_stream_without_a_final_blank_line_is_completed_by_flush() -> None:
    data = _fixture("stream_text.sse").rstrip(b"\n")
    decoder = AnthropicSseDecoder()
    events = decoder.feed(data)
    assert events[-1]["type"] == "message_delta"
    assert decoder.flush() == [{"type": "message_stop"}]


def test_re_encoded_events_decode_to_the_same_events() -> None:
    # What the gateway relays (gateway.sse.encode) is read back the same by an Anthropic-format decoder.
    for name in STREAMS:
        events = _decode([_fixture(name)])
        assert _decode([b"".join(encode(event) for event in events)]) == events


# --- data-only SSE, and what is not SSE of JSON objects -------------------------------------------------------


def test_data_only_sse_keeps_the_type_from_the_json() -> None:
    data = b"".join(
        b"data: " + line + b"\n\n" for line in (orjson.dumps(e) for e in _documented_events("stream_text.sse"))
    )
    assert b"event:" not in data
    assert _decode([data]) == _documented_events("stream_text.sse")
    assert _fold(_decode([data])) == EXPECTED_MESSAGES["stream_text.sse"]


def test_type_comes_from_the_event_line_when_the_json_lacks_it() -> None:
    data = (
        b"event: message_start\n"
        b'data: {"message": {"id": "m", "content": [], "usage": {"input_tokens": 3}}}\n\n'
        b"event: content_block_start\n"
        b'data: {"index": 0, "content_block": {"type": "text", "text": ""}}\n\n'
        b"event: content_block_delta\n"
        b'data: {"index": 0, "delta": {"type": "text_delta", "text": "hi"}}\n\n'
        b"event: message_stop\n"
        b"data: {}\n\n"
    )
    events = _decode([data])
    assert [event["type"] for event in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "message_stop",
    ]
    assert _fold(events) == {"id": "m", "content": [{"type": "text", "text": "hi"}], "usage": {"input_tokens": 3}}


def test_type_in_the_json_wins_over_the_event_line() -> None:
    assert _decode([b'event: something_else\ndata: {"type": "ping"}\n\n']) == [{"type": "ping"}]


def test_json_without_type_and_without_an_event_line_stays_untyped() -> None:
    assert _decode([b'data: {"index": 0}\n\n']) == [{"index": 0}]


@pytest.mark.parametrize(
    "data",
    [b"data: {not json\n\n", b"data: \n\n", b"event: ping\ndata: [DONE]\n\n", b'data: {"type": "ping"\ndata: }x\n\n'],
)
def test_unparsable_data_raises_stream_error(data: bytes) -> None:
    with pytest.raises(StreamError) as info:
        _decode([data])
    assert info.value.error["type"] == "api_error"
    assert info.value.error["message"].startswith("upstream sent unparsable SSE data: ")
    assert isinstance(info.value.__cause__, orjson.JSONDecodeError)


def test_unparsable_data_in_the_flushed_tail_raises_stream_error() -> None:
    decoder = AnthropicSseDecoder()
    assert decoder.feed(b"data: {") == []
    with pytest.raises(StreamError, match="unparsable SSE data"):
        decoder.flush()


@pytest.mark.parametrize("data", [b"[]", b'"message_start"', b"42", b"null", b"true", b'[{"type": "ping"}]'])
def test_non_object_data_raises_stream_error(data: bytes) -> None:
    with pytest.raises(StreamError) as info:
        _decode([b"event: ping\ndata: " + data + b"\n\n"])
    assert info.value.error == {"type": "api_error", "message": "upstream SSE data is not a JSON object"}


def test_multi_line_data_is_joined_before_parsing() -> None:
    # Two data lines are one JSON text joined by "\n", which JSON accepts as whitespace.
    assert _decode([b'event: ping\ndata: {"type":\ndata:  "ping"}\n\n']) == [{"type": "ping"}]


def test_comments_and_empty_streams_yield_no_events() -> None:
    assert _decode([b": keepalive\n\n: keepalive\n\n"]) == []
    assert _decode([]) == []


# --- AnthropicJsonDecoder: an upstream that answered stream:true with a whole Message -------------------------


def _replay(chunks: list[bytes]) -> list[dict[str, Any]]:
    decoder = AnthropicJsonDecoder()
    for chunk in chunks:
        assert decoder.feed(chunk) == []  # nothing before the whole body is in
    return decoder.flush()


def test_json_decoder_replays_the_documented_message() -> None:
    data = _fixture("message.json")
    message = orjson.loads(data)
    for label, chunks in _chunkings(data).items():
        events = _replay(chunks)
        assert [event["type"] for event in events] == [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ], label
        assert _fold(events) == message, label
    assert message == {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": "Hello!"}],
        "model": "claude-sonnet-4-5",
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 6},
    }


def test_json_decoder_replay_matches_what_the_sse_decoder_would_have_produced() -> None:
    message = EXPECTED_MESSAGES["stream_tool_use.sse"]
    assert _fold(_replay([orjson.dumps(message)])) == message


@pytest.mark.parametrize(
    "body",
    [
        b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}',
        b'{"id": "msg_1", "content": []}',  # no type
        b'{"type": "completion", "completion": "hi"}',
        b'{"type": "message_start", "message": {}}',
        b'[{"type": "message"}]',
        b'"message"',
        b"null",
    ],
)
def test_json_decoder_rejects_json_that_is_not_a_message(body: bytes) -> None:
    with pytest.raises(StreamError) as info:
        _replay([body])
    assert info.value.error == {"type": "api_error", "message": "upstream answer is not an Anthropic Message"}


@pytest.mark.parametrize("chunks", [[], [b""], [b'{"type": "message"'], [b"<html>", b"</html>"]])
def test_json_decoder_rejects_invalid_json(chunks: list[bytes]) -> None:
    with pytest.raises(StreamError) as info:
        _replay(chunks)
    assert info.value.error["type"] == "api_error"
    assert info.value.error["message"].startswith("upstream sent invalid JSON: ")
