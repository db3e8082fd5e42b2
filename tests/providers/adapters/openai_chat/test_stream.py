"""OpenAI chat completions stream -> Anthropic events (stream.py), rule by rule, on synthetic chunks.

Chunk format: https://platform.openai.com/docs/api-reference/chat-streaming; Anthropic events:
https://docs.anthropic.com/en/api/messages-streaming. The documented vendor streams are in test_golden.py.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.sse import StreamError
from providers.adapters.azure_openai.adapter import AzureOpenAIAdapter
from providers.adapters.base import InboundContext
from providers.adapters.common.signatures import signature_read
from providers.adapters.openai_chat.adapter import OpenAIChatAdapter, chat_signer
from providers.adapters.openai_chat.stream import decoder_for, error_message, usage_from_openai
from tests.providers.adapters.openai_chat.helpers import (
    INBOUND,
    MESSAGE_STOP,
    SIGNING_KEY,
    Json,
    block_stop,
    body,
    chunk,
    decode,
    error_event,
    fold,
    json_delta,
    message_delta,
    message_start,
    normalise,
    route,
    signature_delta,
    sse,
    text_delta,
    text_start,
    thinking_delta,
    thinking_start,
    tool_delta,
    tool_start,
    usage,
)

NO_USAGE = usage(42, 0, cached=None)


def feeds(*parts: bytes, request: Json | None = None) -> list[list[Json]]:
    """The events each feed returned, then what flush returned."""
    decoder = OpenAIChatAdapter().stream_decoder(route(), request or body(), INBOUND, "text/event-stream")
    out = [normalise(decoder.feed(part)) for part in parts]
    out.append(normalise(decoder.flush()))
    return out


def one(*items: Json | str, done: bool = True, request: Json | None = None) -> list[Json]:
    return decode([sse(*items, done=done)], request)


# --- text -----------------------------------------------------------------------------------------------------


def test_each_content_chunk_is_one_text_delta_emitted_when_it_arrives() -> None:
    out = feeds(
        sse(chunk({"role": "assistant", "content": ""}), done=False),
        sse(chunk({"content": "Hel"}), done=False),
        sse(chunk({"content": "lo"}), done=False),
        sse(chunk(finish="stop"), done=False),
        b"data: [DONE]\n\n",
    )
    assert out == [
        [message_start()],
        [text_start(0), text_delta(0, "Hel")],
        [text_delta(0, "lo")],
        [],
        [block_stop(0), message_delta("end_turn", NO_USAGE), MESSAGE_STOP],
        [],
    ]


def test_content_and_finish_reason_in_one_chunk() -> None:
    assert one(chunk({"role": "assistant", "content": "All done."}, finish="stop")) == [
        message_start(),
        text_start(0),
        text_delta(0, "All done."),
        block_stop(0),
        message_delta("end_turn", NO_USAGE),
        MESSAGE_STOP,
    ]


def test_content_finish_and_usage_in_one_chunk() -> None:
    events = one(chunk({"content": "ok"}, finish="length", usage={"prompt_tokens": 10, "completion_tokens": 3}))
    assert events[-2] == message_delta("max_tokens", usage(10, 3))


def test_whole_message_in_a_stream_chunk_is_read_like_a_delta() -> None:
    events = one(chunk(None, finish="stop", choice={"delta": None, "message": {"role": "assistant", "content": "hi"}}))
    assert fold(events)["content"] == [{"type": "text", "text": "hi"}]


# --- tool calls -----------------------------------------------------------------------------------------------


def test_each_argument_fragment_is_one_input_json_delta_emitted_when_it_arrives() -> None:
    out = feeds(
        sse(chunk(tool_delta(0, "", call_id="call_1", name="Write")), done=False),
        sse(chunk(tool_delta(0, '{"file_path": "/tmp/a",')), done=False),
        sse(chunk(tool_delta(0, ' "content": "hi"}')), done=False),
        sse(chunk(finish="tool_calls")),
    )
    assert out == [
        [message_start(), tool_start(0, "call_1", "Write")],
        [json_delta(0, '{"file_path": "/tmp/a",')],
        [json_delta(0, ' "content": "hi"}')],
        [block_stop(0), message_delta("tool_use", NO_USAGE), MESSAGE_STOP],
        [],
    ]


def test_first_fragment_with_arguments_opens_the_block_and_sends_them() -> None:
    assert one(chunk(tool_delta(0, '{"a": 1}', call_id="call_1", name="T")), chunk(finish="tool_calls"))[1:3] == [
        tool_start(0, "call_1", "T"),
        json_delta(0, '{"a": 1}'),
    ]


def test_parallel_tool_calls_by_index_with_interleaved_fragments() -> None:
    events = one(
        chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "call_a", "type": "function", "function": {"name": "Read", "arguments": ""}},
                    {"index": 1, "id": "call_b", "type": "function", "function": {"name": "Grep", "arguments": ""}},
                ]
            }
        ),
        chunk(tool_delta(0, '{"file_path":')),
        chunk(tool_delta(1, '{"pattern":')),
        chunk(
            {
                "tool_calls": [
                    {"index": 1, "function": {"arguments": ' "x"}'}},
                    {"index": 0, "function": {"arguments": ' "/a"}'}},
                ]
            }
        ),
        chunk(finish="tool_calls"),
    )
    assert events == [
        message_start(),
        tool_start(0, "call_a", "Read"),
        block_stop(0),
        tool_start(1, "call_b", "Grep"),
        json_delta(0, '{"file_path":'),  # a late fragment is still sent at once, addressed by its block index
        json_delta(1, '{"pattern":'),
        json_delta(1, ' "x"}'),
        json_delta(0, ' "/a"}'),
        block_stop(1),
        message_delta("tool_use", NO_USAGE),
        MESSAGE_STOP,
    ]
    assert [block["input"] for block in fold(events)["content"]] == [{"file_path": "/a"}, {"pattern": "x"}]


def test_interleaved_parallel_calls_with_early_arguments_fold() -> None:
    events = one(
        chunk(tool_delta(0, '{"file_path":', call_id="call_a", name="Read")),
        chunk(tool_delta(1, '{"pattern":', call_id="call_b", name="Grep")),
        chunk(tool_delta(0, ' "/a"}')),
        chunk(tool_delta(1, ' "x"}')),
        chunk(finish="tool_calls"),
    )
    assert [block["input"] for block in fold(events)["content"]] == [{"file_path": "/a"}, {"pattern": "x"}]


def test_tool_calls_without_index_are_keyed_by_position_and_object_arguments_are_serialised() -> None:
    events = one(
        chunk(
            {
                "tool_calls": [
                    {
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "Read", "arguments": {"file_path": "/a"}},
                    },
                    {
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "Read", "arguments": '{"file_path": "/b"}'},
                    },
                ]
            },
            finish="tool_calls",
        ),
    )
    assert [b["input"] for b in fold(events)["content"]] == [{"file_path": "/a"}, {"file_path": "/b"}]
    assert json_delta(0, '{"file_path":"/a"}') in events


def test_text_then_tool_call_then_text_keeps_the_upstream_order() -> None:
    events = one(
        chunk({"content": "Let me look."}),
        chunk(tool_delta(0, "{}", call_id="call_1", name="Read")),
        chunk({"content": "Done."}),
        chunk(finish="tool_calls"),
    )
    assert [b["type"] for b in fold(events)["content"]] == ["text", "tool_use", "text"]


def test_arguments_before_the_name_are_ignored() -> None:
    events = one(
        chunk(tool_delta(0, '{"x"')), chunk(tool_delta(0, "{}", call_id="c", name="T")), chunk(finish="tool_calls")
    )
    assert fold(events)["content"] == [{"type": "tool_use", "id": "c", "name": "T", "input": {}}]


def test_stop_after_tool_calls_is_tool_use() -> None:
    # Some servers (llama.cpp, older vLLM) say "stop" after a tool call.
    events = one(chunk(tool_delta(0, "{}", call_id="c", name="T")), chunk(finish="stop"))
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


def test_length_after_tool_calls_stays_max_tokens() -> None:
    events = one(chunk(tool_delta(0, '{"a"', call_id="c", name="T")), chunk(finish="length"))
    assert events[-2]["delta"]["stop_reason"] == "max_tokens"


def test_tool_calls_without_ids_get_unique_ids() -> None:
    events = one(
        chunk(
            {
                "tool_calls": [
                    {"index": 0, "function": {"name": "Read", "arguments": "{}"}},
                    {"index": 1, "function": {"name": "Read", "arguments": "{}"}},
                ]
            },
            finish="tool_calls",
        ),
    )
    ids = [block["id"] for block in fold(events)["content"]]
    assert all(ids) and len(set(ids)) == 2


# --- usage ----------------------------------------------------------------------------------------------------


def test_usage_from_the_final_chunk_with_cached_tokens() -> None:
    events = one(
        chunk({"content": "x"}),
        chunk(finish="stop"),
        {
            "id": "c",
            "choices": [],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 800}},
        },
    )
    assert events[-2] == message_delta("end_turn", usage(200, 5, cached=800))
    assert fold(events)["usage"] == usage(200, 5, cached=800)
    assert events[0] == message_start(42)  # the estimate until the upstream reports


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}, usage(9, 12)),
        (
            {"prompt_tokens": 10, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": 4}},
            usage(6, 1, cached=4),
        ),
        ({"prompt_tokens": 3, "prompt_tokens_details": {"cached_tokens": 5}}, usage(0, 0, cached=5)),
        ({"prompt_tokens": None, "completion_tokens": None, "prompt_tokens_details": None}, usage(0, 0)),
        ({"prompt_tokens": 7, "prompt_tokens_details": "n/a"}, usage(7, 0)),
        ({}, usage(0, 0)),
    ],
)
def test_usage_mapping(raw: Json, expected: Json) -> None:
    assert usage_from_openai(raw) == expected


def test_usage_that_is_not_an_object_is_ignored() -> None:
    assert one(chunk({"content": "x"}, finish="stop", usage="lots"))[-2] == message_delta("end_turn", NO_USAGE)


def test_a_usage_only_chunk_first_starts_the_message() -> None:
    out = feeds(sse({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 0}}, done=False))
    assert out[0] == [message_start()]


# --- stop reasons ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("function_call", "tool_use"),
        ("content_filter", "refusal"),
        ("eos", "end_turn"),  # an unknown reason of a finished generation
    ],
)
def test_finish_reason_mapping(finish: str, stop_reason: str) -> None:
    assert one(chunk({"content": "x"}), chunk(finish=finish))[-2] == message_delta(stop_reason, NO_USAGE)


@pytest.mark.parametrize(
    ("stop_reason", "request_stops", "expected"),
    [
        ("###", ["###", "END"], ("stop_sequence", "###")),
        ("END", ["###", "END"], ("stop_sequence", "END")),
        ("###", [], ("end_turn", None)),  # not one of the client's sequences
        (128009, ["###"], ("end_turn", None)),  # vLLM reports a stop token id as an int
        (None, ["###"], ("end_turn", None)),  # EOS
    ],
)
def test_vllm_matched_stop_string_is_a_stop_sequence(
    stop_reason: Any, request_stops: list[str], expected: tuple[str, Any]
) -> None:
    request = body(stop_sequences=request_stops) if request_stops else body()
    events = one(chunk({"content": "1, 2"}), chunk(finish="stop", choice={"stop_reason": stop_reason}), request=request)
    assert events[-2] == message_delta(expected[0], NO_USAGE, stop_sequence=expected[1])
    assert fold(events)["stop_sequence"] == expected[1]


def test_stop_reason_without_a_finish_reason_is_not_used() -> None:
    events = one(
        chunk({"content": "x"}, choice={"stop_reason": "###"}),
        chunk(finish="stop"),
        request=body(stop_sequences=["###"]),
    )
    assert events[-2] == message_delta("end_turn", NO_USAGE)


def test_finish_reason_error_without_an_error_object_is_an_error() -> None:
    assert one(chunk({"content": "partial"}), chunk(finish="error"))[-1]["type"] == "error"


# --- thinking -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_becomes_a_signed_thinking_block(field: str) -> None:
    events = one(chunk({field: "Let me think."}), chunk({field: " Yes."}), chunk({"content": "Yes."}, finish="stop"))
    assert events[:7] == [
        message_start(),
        thinking_start(0),
        thinking_delta(0, "Let me think."),
        thinking_delta(0, " Yes."),
        signature_delta(0),
        block_stop(0),
        text_start(1),
    ]
    block = fold(events)["content"][0]
    assert block["thinking"] == "Let me think. Yes."
    assert signature_read(block["signature"], SIGNING_KEY) == {"k": "openai_chat"}


def test_reasoning_content_wins_over_reasoning() -> None:
    events = one(chunk({"reasoning_content": "A", "reasoning": "B"}), chunk(finish="stop"))
    assert thinking_delta(0, "A") in events and thinking_delta(0, "B") not in events


def test_thinking_before_a_tool_call_and_at_the_end_is_signed() -> None:
    events = one(
        chunk({"reasoning": "plan"}),
        chunk(tool_delta(0, "{}", call_id="c", name="T")),
        chunk({"reasoning": "more"}),
        chunk(finish="tool_calls"),
    )
    assert [b["type"] for b in fold(events)["content"]] == ["thinking", "tool_use", "thinking"]
    assert events.count(signature_delta(0)) == 1 and events.count(signature_delta(2)) == 1
    assert events.index(signature_delta(2)) < events.index(block_stop(2))


def test_empty_and_non_string_reasoning_is_ignored() -> None:
    events = one(
        chunk({"reasoning_content": "", "reasoning": None, "content": None}),
        chunk({"reasoning": {"x": 1}}),
        chunk(finish="stop"),
    )
    assert events == [message_start(), message_delta("end_turn", NO_USAGE), MESSAGE_STOP]


def test_azure_thinking_is_signed_as_azure() -> None:
    decoder = AzureOpenAIAdapter().stream_decoder(route(), body(), INBOUND, "text/event-stream")
    events = decoder.feed(sse(chunk({"reasoning_content": "r"}), chunk(finish="stop"))) + decoder.flush()
    signature = next(e["delta"]["signature"] for e in events if e.get("delta", {}).get("type") == "signature_delta")
    assert signature_read(signature, SIGNING_KEY) == {"k": "azure_openai"}


def test_chat_signer_ignores_the_text_and_uses_the_deployment_key() -> None:
    sign = chat_signer(InboundContext(signing_key=b"k1"), "openai_chat")
    assert sign("a") == sign("b")
    assert signature_read(sign("a"), b"k1") == {"k": "openai_chat"}
    assert signature_read(sign("a"), b"k2") is None


# --- end of stream --------------------------------------------------------------------------------------------


def test_finish_without_done_completes_at_eof() -> None:
    assert one(chunk({"content": "x"}), chunk(finish="stop"), done=False)[-3:] == [
        block_stop(0),
        message_delta("end_turn", NO_USAGE),
        MESSAGE_STOP,
    ]


def test_last_event_without_a_blank_line_still_counts() -> None:
    data = sse(chunk({"content": "x"}), done=False) + b"data: " + orjson.dumps(chunk(finish="stop"))
    assert decode([data])[-2] == message_delta("end_turn", NO_USAGE)


@pytest.mark.parametrize("done", [True, False], ids=["[DONE]", "EOF"])
def test_no_finish_reason_is_an_error_never_end_turn(done: bool) -> None:
    events = one(chunk({"content": "partial"}), done=done)
    assert events == [
        message_start(),
        text_start(0),
        text_delta(0, "partial"),
        error_event("api_error", "upstream stream ended without a finish_reason"),
    ]
    with pytest.raises(StreamError):
        fold(events)


def test_empty_stream_is_an_error() -> None:
    assert decode([b""]) == [error_event("api_error", "upstream stream ended without a finish_reason")]
    assert decode([b": keep-alive\n\n"]) == [error_event("api_error", "upstream stream ended without a finish_reason")]


def test_events_after_done_are_ignored() -> None:
    events = decode([sse(chunk({"content": "x"}, finish="stop")) + sse(chunk({"content": "late"}), "not json")])
    assert events[-1] == MESSAGE_STOP
    assert text_delta(0, "late") not in events


def test_done_with_surrounding_whitespace() -> None:
    assert decode([sse(chunk({"content": "x"}, finish="stop"), done=False) + b"data:  [DONE] \n\n"])[-1] == MESSAGE_STOP


def test_non_object_data_is_ignored() -> None:
    events = one("[1, 2]", '"text"', "42", "null", chunk({"content": "x"}, finish="stop"))
    assert events[-1] == MESSAGE_STOP


def test_choice_that_is_not_an_object_only_starts_the_message() -> None:
    assert one({"choices": ["oops"]}, chunk(finish="stop")) == [
        message_start(),
        message_delta("end_turn", NO_USAGE),
        MESSAGE_STOP,
    ]


# --- errors inside the stream ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            {"code": "server_error", "message": "Provider disconnected"},
            ("api_error", "upstream: Provider disconnected"),
        ),
        ({"code": 429, "message": "Rate limit exceeded"}, ("overloaded_error", "upstream: Rate limit exceeded")),
        ({"code": 502, "message": "down"}, ("overloaded_error", "upstream: down")),
        ({"code": 503, "message": "none available"}, ("overloaded_error", "upstream: none available")),
        ({"code": 529, "message": "busy"}, ("overloaded_error", "upstream: busy")),
        ({"code": "rate_limit_exceeded", "message": "slow down"}, ("overloaded_error", "upstream: slow down")),
        ({"code": 400}, ("api_error", "upstream: upstream error")),
        ("model crashed", ("api_error", "upstream: model crashed")),
        ({}, ("api_error", "upstream: upstream error")),
    ],
)
def test_error_object_mid_stream_is_an_error_event(error: Any, expected: tuple[str, str]) -> None:
    out = feeds(
        sse(chunk({"content": "so far"}), done=False), sse({"error": error, "choices": []}, chunk({"content": "after"}))
    )
    assert out[1] == [error_event(*expected)]
    assert out[2] == []  # nothing after the error, not even at flush
    assert error_message({"error": error}) == expected


def test_error_before_any_content_is_only_an_error_event() -> None:
    assert one({"error": {"message": "no", "code": "invalid_api_key"}}) == [error_event("api_error", "upstream: no")]


def test_null_error_field_is_not_an_error() -> None:
    assert one(chunk({"content": "x"}, finish="stop", error=None))[-1] == MESSAGE_STOP


@pytest.mark.parametrize("data", [b"data: {not json\n\n", b'data: {"choices": [\n\n', b"data: \n\n"])
def test_unparsable_data_raises_stream_error(data: bytes) -> None:
    decoder = OpenAIChatAdapter().stream_decoder(route(), body(), INBOUND, "text/event-stream")
    with pytest.raises(StreamError) as info:
        decoder.feed(data)
    assert info.value.error["type"] == "api_error"
    assert info.value.error["message"].startswith("upstream sent unparsable SSE data: ")
    assert isinstance(info.value.__cause__, orjson.JSONDecodeError)


def test_unparsable_data_in_the_flushed_tail_raises_stream_error() -> None:
    decoder = OpenAIChatAdapter().stream_decoder(route(), body(), INBOUND, "text/event-stream")
    assert decoder.feed(b'data: {"choices": [') == []
    with pytest.raises(StreamError, match="unparsable SSE data"):
        decoder.flush()


# --- a whole ChatCompletion (JSON) ----------------------------------------------------------------------------


def replay(*parts: bytes, content_type: str = "application/json") -> list[Json]:
    decoder = OpenAIChatAdapter().stream_decoder(route(), body(), INBOUND, content_type)
    for part in parts:
        assert decoder.feed(part) == []  # nothing before the whole body is in
    return normalise(decoder.flush())


def test_json_completion_is_replayed_as_events() -> None:
    completion = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hi", "reasoning_content": "greet"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2},
    }
    data = orjson.dumps(completion)
    events = replay(data[:10], data[10:], content_type="application/json; charset=utf-8")
    assert fold(events)["content"][1] == {"type": "text", "text": "Hi"}
    assert events[-2] == message_delta("end_turn", usage(5, 2))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b'{"id": "gen-1", "object": "chat.completion", "choices": [], "usage": {"prompt_tokens": 3}}',
            "upstream answer has no choices",
        ),
        (b'{"id": "gen-1"}', "upstream answer has no choices"),
        (b"[1, 2]", "upstream answer has no choices"),
        (b"null", "upstream answer has no choices"),
    ],
)
def test_json_answer_without_choices_raises_stream_error(data: bytes, message: str) -> None:
    with pytest.raises(StreamError) as info:
        replay(data)
    assert info.value.error == {"type": "api_error", "message": message}


@pytest.mark.parametrize("parts", [[], [b""], [b"<html>Bad gateway</html>"], [b'{"choices": [']])
def test_invalid_json_answer_raises_stream_error(parts: list[bytes]) -> None:
    with pytest.raises(StreamError) as info:
        replay(*parts)
    assert info.value.error["message"].startswith("upstream sent invalid JSON: ")


def test_json_error_with_200_and_empty_choices_is_an_error_event() -> None:
    assert replay(b'{"error": {"code": 429, "message": "busy"}, "choices": []}') == [
        error_event("overloaded_error", "upstream: busy")
    ]


def test_decoder_kind_follows_the_content_type() -> None:
    common: dict[str, Any] = {
        "message_id": "m",
        "model": "x",
        "input_tokens": 0,
        "names": {},
        "stop_sequences": [],
        "signer": None,
    }
    assert type(decoder_for("application/json", **common)).__name__ == "ChatJsonDecoder"
    assert type(decoder_for("text/event-stream; charset=utf-8", **common)).__name__ == "ChatSseDecoder"
    assert type(decoder_for("", **common)).__name__ == "ChatSseDecoder"


def test_unsigned_thinking_without_a_signer() -> None:
    decoder = decoder_for(
        "text/event-stream", message_id="m", model="x", input_tokens=0, names={}, stop_sequences=[], signer=None
    )
    events = decoder.feed(sse(chunk({"reasoning": "r"}), chunk(finish="stop"))) + decoder.flush()
    assert not [e for e in events if e.get("delta", {}).get("type") == "signature_delta"]
    assert fold(events)["content"] == [{"type": "thinking", "thinking": "r", "signature": ""}]


def test_content_part_lists_skip_what_is_not_text_or_reasoning() -> None:
    parts = [
        "not a dict",
        {"type": "reasoning", "summary": ["not a dict", {"type": "summary_text", "text": "think"}, {"text": 3}]},
        {"type": "image", "url": "x"},
        {"type": "text", "text": "answer"},
        {"type": "text", "text": None},
    ]
    data = sse(chunk({"role": "assistant", "content": parts}, finish="stop"))
    folded = fold(decode([data]))
    assert [b["type"] for b in folded["content"]] == ["thinking", "text"]
    assert folded["content"][0]["thinking"] == "think"
    assert folded["content"][1]["text"] == "answer"
