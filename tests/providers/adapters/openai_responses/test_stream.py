"""Decoding an OpenAI Responses stream (or a whole Response) into Anthropic events, on golden fixtures and edge cases.

Fixtures are OpenAI's documented examples (each ``.sse`` names its source in its comment lines):
https://platform.openai.com/docs/api-reference/responses-streaming, the function-calling guide's streaming output
(https://platform.openai.com/docs/guides/function-calling#streaming), and the "Create a model response" example of
https://platform.openai.com/docs/api-reference/responses/create for ``response.json``.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.sse import Accumulator, StreamError
from providers.adapters.common.signatures import signature_read

from ._helpers import SECRET, SIGNED, chunkings, decode, fixture, fold, sse, without_signatures

Json = dict[str, Any]
RS_ID = "rs_6806bfca0b2481918a5748308061a2600d3ce51bdffd5476"
LILA = (
    "In a shimmering forest under a sky full of stars, a lonely unicorn named Lila discovered a hidden pond that glowed"
    " with moonlight. Every night, she would leave sparkling, magical flowers by the water's edge, hoping to share her"
    " beauty with others. One enchanting evening, she woke to find a group of friendly animals gathered around, eager"
    " to be friends and share in her magic."
)
GREETING = (
    '**Responding to a greeting**\n\nThe user just said, "Hello!" So, it seems I need to engage. I\'ll greet them back'
    ' and offer help since they\'re looking to chat. I could say something like, "Hello! How can I assist you today?"'
    " That feels friendly and open. They didn't ask a specific question, so this approach will work well for starting"
    " a conversation. Let's see where it goes from there!"
)


def _message(content: list[Json], stop_reason: str, usage: Json) -> Json:
    return {
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "model": "claude-opus-5-5",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }


def _usage(input_tokens: int, output_tokens: int, cached: int = 0) -> Json:
    return {"input_tokens": input_tokens, "output_tokens": output_tokens, "cache_read_input_tokens": cached}


def _weather(call_id: str, location: str) -> Json:
    return {"type": "tool_use", "id": call_id, "name": "get_weather", "input": {"location": location}}


EXPECTED_MESSAGES: dict[str, Json] = {
    "stream_text.sse": _message([{"type": "text", "text": LILA}], "end_turn", _usage(36, 87)),
    "stream_tool_use.sse": _message([_weather("call_1234xyz", "Paris, France")], "tool_use", _usage(35, 23, 256)),
    "stream_reasoning.sse": _message(
        [
            {"type": "thinking", "thinking": GREETING, "signature": SIGNED},
            {"type": "text", "text": "Hello! How can I assist you today?"},
        ],
        "end_turn",
        _usage(176, 272, 1024),
    ),
    "stream_text_and_tools.sse": _message(
        [
            {"type": "text", "text": "Let me check the weather in both cities."},
            _weather("call_12345xyz", "Paris, France"),
            _weather("call_67890abc", "Bogotá, Colombia"),
        ],
        "tool_use",
        _usage(305, 58),
    ),
    "stream_incomplete.sse": _message([{"type": "text", "text": "In a shimmering"}], "max_tokens", _usage(36, 16)),
}
EXPECTED_ERRORS = {
    "stream_error.sse": {"type": "api_error", "message": "upstream: Something went wrong"},
    "stream_failed.sse": {"type": "api_error", "message": "upstream: The model failed to generate a response."},
}
EXPECTED_TYPES = {
    "stream_text.sse": ["message_start", "content_block_start", *["content_block_delta"] * 4, "content_block_stop"],
    "stream_tool_use.sse": ["message_start", "content_block_start", *["content_block_delta"] * 7, "content_block_stop"],
    "stream_reasoning.sse": [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 4,  # 3 thinking deltas + the signature
        "content_block_stop",
        "content_block_start",
        *["content_block_delta"] * 3,
        "content_block_stop",
    ],
    "stream_text_and_tools.sse": [
        "message_start",
        *["content_block_start", "content_block_delta", "content_block_delta", "content_block_stop"] * 2,
        "content_block_start",
        *["content_block_delta"] * 3,
        "content_block_stop",
    ],
    "stream_incomplete.sse": [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 2,
        "content_block_stop",
    ],
}
STREAMS = [*EXPECTED_MESSAGES, *EXPECTED_ERRORS]


# --- golden fixtures ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(EXPECTED_MESSAGES))
def test_fixture_decodes_to_the_expected_events(name: str) -> None:
    events = decode([fixture(name)])
    assert [e["type"] for e in events] == [*EXPECTED_TYPES[name], "message_delta", "message_stop"]
    # message_start goes out with the gateway's estimate; the upstream's count arrives in message_delta.
    assert events[0]["message"]["usage"] == {"input_tokens": 1234, "output_tokens": 0}
    assert events[-2]["usage"] == EXPECTED_MESSAGES[name]["usage"]


@pytest.mark.parametrize("name", STREAMS)
def test_every_chunking_gives_the_same_events(name: str) -> None:
    data = fixture(name)
    expected = decode([data])
    for label, chunks in chunkings(data).items():
        assert b"".join(chunks) == data
        assert decode(chunks) == expected, label


@pytest.mark.parametrize("newline", [b"\r\n", b"\r"], ids=["CRLF", "CR"])
@pytest.mark.parametrize("name", STREAMS)
def test_other_line_endings_give_the_same_events(name: str, newline: bytes) -> None:
    data = fixture(name)
    assert decode(chunkings(data.replace(b"\n", newline))["7 bytes"]) == decode([data])


@pytest.mark.parametrize("name", list(EXPECTED_MESSAGES))
def test_fixture_folds_to_the_expected_message(name: str) -> None:
    for label, chunks in chunkings(fixture(name)).items():
        assert without_signatures(fold(decode(chunks))) == EXPECTED_MESSAGES[name], label


@pytest.mark.parametrize("name", list(EXPECTED_ERRORS))
def test_error_fixtures_end_with_an_error_event(name: str) -> None:
    events = decode([fixture(name)])
    assert [e["type"] for e in events] == ["message_start", "error"]
    assert events[-1]["error"] == EXPECTED_ERRORS[name]
    with pytest.raises(StreamError) as info:
        fold(events)
    assert info.value.error == EXPECTED_ERRORS[name]


def test_reasoning_signature_carries_the_item_and_its_encrypted_content() -> None:
    message = fold(decode([fixture("stream_reasoning.sse")]))
    payload = signature_read(message["content"][0]["signature"], SECRET)
    assert payload is not None
    assert payload["k"] == "responses" and payload["id"] == RS_ID and payload["enc"].startswith("gAAAAABoBr_K")
    assert signature_read(message["content"][0]["signature"], b"another deployment") is None


def test_data_only_sse_and_event_line_types() -> None:
    lines = [line for line in fixture("stream_text.sse").split(b"\n") if not line.startswith(b"event:")]
    assert decode([b"\n".join(lines)]) == decode([fixture("stream_text.sse")])
    # A payload without "type" takes the event line's name.
    untyped = b'event: response.output_text.delta\ndata: {"item_id": "m", "output_index": 0, "delta": "hi"}\n\n'
    events = decode([untyped + sse({"type": "response.completed", "response": {"status": "completed"}})])
    assert without_signatures(fold(events))["content"] == [{"type": "text", "text": "hi"}]


def test_done_sentinel_comments_and_non_object_data_are_ignored() -> None:
    data = b": keep-alive\n\ndata: [DONE]\n\ndata: [1, 2]\n\ndata: 42\n\n" + fixture("stream_text.sse")
    assert decode([data]) == decode([fixture("stream_text.sse")])


@pytest.mark.parametrize("data", [b"data: {not json\n\n", b"data: \n\n", b'event: response.created\ndata: {"type"\n\n'])
def test_unparsable_data_raises_stream_error(data: bytes) -> None:
    with pytest.raises(StreamError) as info:
        decode([data])
    assert info.value.error["type"] == "api_error"
    assert info.value.error["message"].startswith("upstream sent unparsable SSE data: ")


def test_a_stream_that_stops_early_ends_with_an_error() -> None:
    data = fixture("stream_text.sse")
    cut = data[: data.index(b"event: response.completed")]
    events = decode([cut])
    assert events[-1] == {
        "type": "error",
        "error": {"type": "api_error", "message": "upstream stream ended without response.completed"},
    }
    assert decode([]) == [events[-1]]


def test_events_after_the_end_are_ignored() -> None:
    data = fixture("stream_text.sse")
    assert decode([data + data]) == decode([data])


# --- a whole Response JSON ------------------------------------------------------------------------------------


def _replay(chunks: list[bytes], content_type: str = "application/json") -> list[Json]:
    return decode(chunks, content_type=content_type)


def test_json_response_replays_the_documented_example() -> None:
    data = fixture("response.json")
    text = orjson.loads(data)["output"][0]["content"][0]["text"]
    for label, chunks in chunkings(data).items():
        events = _replay(chunks, "application/json; charset=utf-8")
        assert [e["type"] for e in events] == [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ], label
        assert fold(events) == _message([{"type": "text", "text": text}], "end_turn", _usage(36, 87)), label


def test_json_function_call_replay_matches_the_stream() -> None:
    message = fold(_replay([fixture("response_function_call.json")]))
    assert message == _message([_weather("call_12345xyz", "Paris, France")], "tool_use", _usage(291, 23))


def test_json_replay_of_a_reasoning_response() -> None:
    data = fixture("stream_reasoning.sse")
    completed = [line for line in data.split(b"\n") if line.startswith(b'data: {"type":"response.completed"')]
    response = orjson.loads(completed[0][len(b"data: ") :])["response"]
    replayed = fold(_replay([orjson.dumps(response)]))
    assert replayed == fold(decode([data]))  # the same message, signature included


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            {
                "id": "resp_1",
                "status": "failed",
                "output": [],
                "error": {"code": "server_error", "message": "The model failed to generate a response."},
            },
            {"type": "api_error", "message": "upstream: The model failed to generate a response."},
        ),
        (
            {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}},
            {"type": "rate_limit_error", "message": "upstream: Rate limit reached"},
        ),
    ],
)
def test_json_failures_become_error_events(body: Json, error: Json) -> None:
    events = _replay([orjson.dumps(body)])
    assert events[-1] == {"type": "error", "error": error}
    acc = Accumulator()
    with pytest.raises(StreamError):
        for event in events:
            acc.feed(event)


@pytest.mark.parametrize("body", [b'{"id": "resp_1"}', b'{"output": {}}', b"[]", b"null", b'{"error": null}'])
def test_json_that_is_not_a_response_raises(body: bytes) -> None:
    with pytest.raises(StreamError) as info:
        _replay([body])
    assert info.value.error == {"type": "api_error", "message": "upstream answer is not a Responses API response"}


@pytest.mark.parametrize("chunks", [[], [b'{"output": ['], [b"<html>", b"</html>"]])
def test_invalid_json_raises(chunks: list[bytes]) -> None:
    with pytest.raises(StreamError) as info:
        _replay(chunks)
    assert info.value.error["message"].startswith("upstream sent invalid JSON: ")
