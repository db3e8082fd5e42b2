"""Golden wire fixtures written from the vendors' documented examples, decoded into Anthropic events.

Each ``.sse`` cites its source in its leading ``:`` comment lines (SSE comments, ignored by the parser). The JSON
answers (``stream`` ignored by the server, or an error with HTTP 200) come from:

- ``openai_completion.json``, ``openai_tool_completion.json``: the "Default" and "Functions" response examples of
  https://platform.openai.com/docs/api-reference/chat/create
- ``openrouter_error_200.json``: https://openrouter.ai/docs/api-reference/errors (an error after the model started
  is emitted in a 200 body, ``{"error": {"code": <int>, "message", "metadata"}}``)
- ``databricks_chat.json``: the chat response of https://docs.databricks.com/aws/en/machine-learning/foundation-model-apis/api-reference
- ``databricks_reasoning.json``: "Query reasoning models",
  https://docs.databricks.com/aws/en/machine-learning/model-serving/score-reason-models (content as a list of
  ``reasoning`` and ``text`` parts)
- ``azure_completion.json``: the chat completions example of
  https://learn.microsoft.com/azure/ai-services/openai/reference
  (with ``prompt_filter_results`` / ``content_filter_results``)
- ``foundry_reasoning.json``: Azure AI Foundry ``/models/chat/completions`` with DeepSeek-R1,
  ``message.reasoning_content`` (https://learn.microsoft.com/azure/ai-foundry/model-inference/how-to/use-chat-reasoning)

The requests out (``request_*.json``) are the vendor's documented request bodies, reached from the equivalent
Anthropic request, plus what the gateway always adds (``stream``, ``stream_options``, ``max_tokens``).
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from gateway.sse import StreamError
from providers.adapters.common.signatures import signature_read
from providers.adapters.openai_chat.adapter import OpenAIChatAdapter
from providers.adapters.openai_chat.translate import build_request
from tests.providers.adapters.openai_chat.helpers import (
    INBOUND,
    MESSAGE_STOP,
    SIGNATURE,
    SIGNING_KEY,
    Json,
    block_stop,
    body,
    chunkings,
    content_type_of,
    decode,
    error_event,
    fixture,
    fixture_json,
    fold,
    json_delta,
    message,
    message_delta,
    message_start,
    normalise,
    provider,
    route,
    signature_delta,
    text_delta,
    text_start,
    thinking_delta,
    thinking_start,
    tool_start,
    usage,
)

VLLM_REQUEST = body(stop_sequences=["###"])

# name -> (request body the decoder is built for, expected events, expected folded Message or None for errors)
GOLDEN: dict[str, tuple[Json, list[Json], Json | None]] = {
    "openai_text.sse": (
        body(),
        [
            message_start(),
            text_start(0),
            text_delta(0, "Hello"),
            text_delta(0, "!"),
            text_delta(0, " How can I assist you today?"),
            block_stop(0),
            message_delta("end_turn", usage(9, 12)),
            MESSAGE_STOP,
        ],
        message([{"type": "text", "text": "Hello! How can I assist you today?"}], "end_turn", usage(9, 12)),
    ),
    "openai_tool_calls.sse": (
        body(),
        [
            message_start(),
            tool_start(0, "call_DdmO9pD3xa9XTPNJ32zg2hcA", "get_weather"),
            json_delta(0, '{"'),
            json_delta(0, "location"),
            json_delta(0, '":"'),
            json_delta(0, "Paris"),
            json_delta(0, ","),
            json_delta(0, " France"),
            json_delta(0, '"}'),
            block_stop(0),
            message_delta("tool_use", usage(42, 0, cached=None)),
            MESSAGE_STOP,
        ],
        message(
            [
                {
                    "type": "tool_use",
                    "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA",
                    "name": "get_weather",
                    "input": {"location": "Paris, France"},
                }
            ],
            "tool_use",
            usage(42, 0, cached=None),
        ),
    ),
    "openai_parallel_tools.sse": (
        body(),
        [
            message_start(),
            text_start(0),
            text_delta(0, "Let me check all three cities."),
            block_stop(0),
            tool_start(1, "call_K5Pqp6vN1TmR0c8uW3aD2fSx", "get_weather"),
            json_delta(1, '{"location": "San'),
            json_delta(1, ' Francisco, CA"}'),
            block_stop(1),
            tool_start(2, "call_3xVbq0LwE7yN2sKf9tHr6jCm", "get_weather"),
            json_delta(2, '{"location": "Tokyo, JP"}'),
            block_stop(2),
            tool_start(3, "call_Wd8rT1nQ4pZe6uGy0aLs5vBk", "get_weather"),
            json_delta(3, '{"location": '),
            json_delta(3, '"Paris, FR"}'),
            block_stop(3),
            # prompt_tokens counts the cached ones; Anthropic reports them apart.
            message_delta("tool_use", usage(2006 - 1920, 63, cached=1920)),
            MESSAGE_STOP,
        ],
        message(
            [
                {"type": "text", "text": "Let me check all three cities."},
                {
                    "type": "tool_use",
                    "id": "call_K5Pqp6vN1TmR0c8uW3aD2fSx",
                    "name": "get_weather",
                    "input": {"location": "San Francisco, CA"},
                },
                {
                    "type": "tool_use",
                    "id": "call_3xVbq0LwE7yN2sKf9tHr6jCm",
                    "name": "get_weather",
                    "input": {"location": "Tokyo, JP"},
                },
                {
                    "type": "tool_use",
                    "id": "call_Wd8rT1nQ4pZe6uGy0aLs5vBk",
                    "name": "get_weather",
                    "input": {"location": "Paris, FR"},
                },
            ],
            "tool_use",
            usage(86, 63, cached=1920),
        ),
    ),
    "deepseek_reasoning.sse": (
        body(),
        [
            message_start(),
            thinking_start(0),
            thinking_delta(0, "Compare"),
            thinking_delta(0, " the tenths: 9.11 has 1, 9.8 has 8."),
            thinking_delta(0, " So 9.8 is greater."),
            signature_delta(0),
            block_stop(0),
            text_start(1),
            text_delta(1, "9.8"),
            text_delta(1, " is greater than 9.11."),
            block_stop(1),
            message_delta("end_turn", usage(17, 42)),
            MESSAGE_STOP,
        ],
        message(
            [
                {
                    "type": "thinking",
                    "thinking": "Compare the tenths: 9.11 has 1, 9.8 has 8. So 9.8 is greater.",
                    "signature": SIGNATURE,
                },
                {"type": "text", "text": "9.8 is greater than 9.11."},
            ],
            "end_turn",
            usage(17, 42),
        ),
    ),
    "openrouter_reasoning.sse": (
        body(),
        [
            message_start(),
            thinking_start(0),
            thinking_delta(0, "The user wants"),
            thinking_delta(0, " a tall building plan."),
            signature_delta(0),
            block_stop(0),
            text_start(1),
            text_delta(1, "Start with"),
            text_delta(1, " a deep foundation."),
            block_stop(1),
            message_delta("max_tokens", usage(14, 20)),
            MESSAGE_STOP,
        ],
        message(
            [
                {"type": "thinking", "thinking": "The user wants a tall building plan.", "signature": SIGNATURE},
                {"type": "text", "text": "Start with a deep foundation."},
            ],
            "max_tokens",
            usage(14, 20),
        ),
    ),
    "openrouter_midstream_error.sse": (
        body(),
        [
            message_start(),
            text_start(0),
            text_delta(0, "The tallest"),
            error_event("api_error", "upstream: Provider disconnected unexpectedly"),
        ],
        None,
    ),
    "vllm_stop_reason.sse": (
        VLLM_REQUEST,
        [
            message_start(),
            text_start(0),
            text_delta(0, "1, 2"),
            text_delta(0, ", 3"),
            block_stop(0),
            message_delta("stop_sequence", usage(24, 7), stop_sequence="###"),
            MESSAGE_STOP,
        ],
        message([{"type": "text", "text": "1, 2, 3"}], "stop_sequence", usage(24, 7), stop_sequence="###"),
    ),
    "databricks_tool_stream.sse": (
        body(),
        [
            message_start(),
            tool_start(0, "call_87aed80e-f856-468f-9523-52db3018d83d", "get_weather"),
            json_delta(0, '{ "city": "Tokyo" }'),
            block_stop(0),
            message_delta("tool_use", usage(682, 16)),  # the last usage seen wins
            MESSAGE_STOP,
        ],
        message(
            [
                {
                    "type": "tool_use",
                    "id": "call_87aed80e-f856-468f-9523-52db3018d83d",
                    "name": "get_weather",
                    "input": {"city": "Tokyo"},
                }
            ],
            "tool_use",
            usage(682, 16),
        ),
    ),
    "azure_content_filter.sse": (
        body(),
        [
            message_start(),  # from the first chunk, which has no choices (prompt_filter_results only)
            text_start(0),
            text_delta(0, "Here is"),
            block_stop(0),
            message_delta("refusal", usage(42, 0, cached=None)),
            MESSAGE_STOP,
        ],
        message([{"type": "text", "text": "Here is"}], "refusal", usage(42, 0, cached=None)),
    ),
    "openai_completion.json": (
        body(),
        [
            message_start(),
            text_start(0),
            text_delta(0, "\n\nHello there, how may I assist you today?"),
            block_stop(0),
            message_delta("end_turn", usage(9, 12)),
            MESSAGE_STOP,
        ],
        message([{"type": "text", "text": "\n\nHello there, how may I assist you today?"}], "end_turn", usage(9, 12)),
    ),
    "openai_tool_completion.json": (
        body(),
        [
            message_start(),
            tool_start(0, "call_abc123", "get_current_weather"),
            json_delta(0, '{\n"location": "Boston, MA"\n}'),
            block_stop(0),
            message_delta("tool_use", usage(82, 17)),
            MESSAGE_STOP,
        ],
        message(
            [
                {
                    "type": "tool_use",
                    "id": "call_abc123",
                    "name": "get_current_weather",
                    "input": {"location": "Boston, MA"},
                }
            ],
            "tool_use",
            usage(82, 17),
        ),
    ),
    "openrouter_error_200.json": (
        body(),
        # error code 502 (model down upstream) is back-pressure for the client, not a bad request.
        [error_event("overloaded_error", "upstream: Provider returned error")],
        None,
    ),
    "databricks_chat.json": (
        body(),
        [
            message_start(),
            text_start(0),
            text_delta(0, "A mixture of experts model routes each token to a few specialised sub-networks."),
            block_stop(0),
            message_delta("end_turn", usage(21, 18)),
            MESSAGE_STOP,
        ],
        message(
            [
                {
                    "type": "text",
                    "text": "A mixture of experts model routes each token to a few specialised sub-networks.",
                }
            ],
            "end_turn",
            usage(21, 18),
        ),
    ),
    "azure_completion.json": (
        body(),
        [
            message_start(),
            text_start(0),
            text_delta(0, "Ahoy matey! So ye be wantin' to know about ChatGPT?"),
            block_stop(0),
            message_delta("end_turn", usage(33, 557)),
            MESSAGE_STOP,
        ],
        message(
            [{"type": "text", "text": "Ahoy matey! So ye be wantin' to know about ChatGPT?"}],
            "end_turn",
            usage(33, 557),
        ),
    ),
    "foundry_reasoning.json": (
        body(),
        [
            message_start(),
            thinking_start(0),
            thinking_delta(0, "The user asks for the capital of France. That is Paris."),
            signature_delta(0),
            block_stop(0),
            text_start(1),
            text_delta(1, "The capital of France is Paris."),
            block_stop(1),
            message_delta("end_turn", usage(11, 24)),
            MESSAGE_STOP,
        ],
        message(
            [
                {
                    "type": "thinking",
                    "thinking": "The user asks for the capital of France. That is Paris.",
                    "signature": SIGNATURE,
                },
                {"type": "text", "text": "The capital of France is Paris."},
            ],
            "end_turn",
            usage(11, 24),
        ),
    ),
}

STREAMS = sorted(name for name in GOLDEN if name.endswith(".sse"))
ANSWERS = sorted(name for name in GOLDEN if name.endswith(".json"))
SUCCESSFUL = sorted(name for name, (_, _, folded) in GOLDEN.items() if folded is not None)


def _decode_fixture(name: str, chunks: list[bytes] | None = None) -> list[Json]:
    request, _, _ = GOLDEN[name]
    return decode(chunks if chunks is not None else [fixture(name)], request, content_type_of(name))


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_fixture_decodes_to_the_exact_event_sequence(name: str) -> None:
    assert _decode_fixture(name) == GOLDEN[name][1]


@pytest.mark.parametrize("name", SUCCESSFUL)
def test_fixture_folds_to_the_expected_message(name: str) -> None:
    assert fold(_decode_fixture(name)) == GOLDEN[name][2]


@pytest.mark.parametrize("name", ["openrouter_midstream_error.sse", "openrouter_error_200.json"])
def test_error_fixtures_raise_when_folded(name: str) -> None:
    events = _decode_fixture(name)
    with pytest.raises(StreamError) as info:
        fold(events)
    assert info.value.error == events[-1]["error"]


@pytest.mark.parametrize("name", STREAMS)
def test_every_chunking_of_a_stream_gives_the_same_events(name: str) -> None:
    data = fixture(name)
    for label, chunks in chunkings(data).items():
        assert b"".join(chunks) == data
        assert _decode_fixture(name, chunks) == GOLDEN[name][1], label


@pytest.mark.parametrize("newline", [b"\r\n", b"\r"], ids=["CRLF", "CR"])
@pytest.mark.parametrize("name", STREAMS)
def test_other_line_endings_give_the_same_events(name: str, newline: bytes) -> None:
    data = fixture(name).replace(b"\n", newline)
    for label, chunks in chunkings(data).items():
        assert _decode_fixture(name, chunks) == GOLDEN[name][1], label


@pytest.mark.parametrize("name", ANSWERS)
def test_json_answers_decode_the_same_in_any_chunking(name: str) -> None:
    data = fixture(name)
    for label, chunks in chunkings(data).items():
        assert _decode_fixture(name, chunks) == GOLDEN[name][1], label


@pytest.mark.parametrize("name", STREAMS)
def test_streams_emit_every_fragment_on_the_feed_that_carried_it(name: str) -> None:
    # One upstream SSE event per feed: each text / reasoning / argument fragment comes out at once, not at the end.
    request, expected, _ = GOLDEN[name]
    decoder = OpenAIChatAdapter().stream_decoder(route(), request, INBOUND, "text/event-stream")
    parts = [part + b"\n\n" for part in fixture(name).split(b"\n\n") if part.strip()]
    per_feed = [normalise(decoder.feed(part)) for part in parts]
    assert [event for events in per_feed for event in events] + normalise(decoder.flush()) == expected
    for part, events in zip(parts, per_feed, strict=True):
        deltas = [event["delta"] for event in events if event["type"] == "content_block_delta"]
        for line in part.split(b"\n"):
            if not line.startswith(b"data: {"):
                continue
            for choice in orjson.loads(line[len(b"data: ") :]).get("choices") or []:
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    assert {"type": "text_delta", "text": delta["content"]} in deltas
                reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                if reasoning:
                    assert {"type": "thinking_delta", "thinking": reasoning} in deltas
                for call in delta.get("tool_calls") or []:
                    if call["function"].get("arguments"):
                        assert {"type": "input_json_delta", "partial_json": call["function"]["arguments"]} in deltas


@pytest.mark.parametrize("name", ["deepseek_reasoning.sse", "openrouter_reasoning.sse", "foundry_reasoning.json"])
def test_thinking_blocks_carry_a_signature_we_recognise(name: str) -> None:
    thinking = [b for b in fold(_decode_fixture(name))["content"] if b["type"] == "thinking"]
    assert thinking
    for block in thinking:
        assert signature_read(block["signature"], SIGNING_KEY) == {"k": "openai_chat"}
        assert signature_read(block["signature"], b"another deployment") is None


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_no_ping_events(name: str) -> None:
    assert all(event["type"] != "ping" for event in _decode_fixture(name))


def test_databricks_content_list_is_not_dropped() -> None:
    folded = fold(decode([fixture("databricks_reasoning.json")], content_type="application/json"))
    assert [block["type"] for block in folded["content"]] == ["thinking", "text"]
    assert folded["content"][0]["thinking"].startswith("The question is asking")
    assert folded["content"][1]["text"] == "The sky appears blue because of Rayleigh scattering."


def test_deepseek_cache_hits_become_cache_read_tokens() -> None:
    data = (
        fixture("deepseek_reasoning.sse")
        .replace(b'"prompt_tokens_details":{"cached_tokens":0},', b"")
        .replace(
            b'"prompt_cache_hit_tokens":0,"prompt_cache_miss_tokens":17',
            b'"prompt_cache_hit_tokens":16,"prompt_cache_miss_tokens":1',
        )
    )
    assert b'prompt_cache_hit_tokens":16' in data
    assert fold(decode([data]))["usage"] == usage(1, 42, cached=16)


# --- requests out ---------------------------------------------------------------------------------------------

GET_WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Get current temperature for a given location.",
    "input_schema": {
        "type": "object",
        "properties": {"location": {"type": "string", "description": "City and country e.g. Bogotá, Colombia"}},
        "required": ["location"],
        "additionalProperties": False,
    },
}

REQUESTS: dict[str, tuple[Any, Json]] = {
    # https://platform.openai.com/docs/guides/function-calling (the get_weather example, Chat Completions form)
    "request_get_weather.json": (
        provider(),
        body(
            messages=[{"role": "user", "content": "What is the weather like in Paris today?"}],
            tools=[GET_WEATHER_TOOL],
            tool_choice={"type": "auto"},
        ),
    ),
    # The guide's second request: the model's tool call echoed back, then the tool message with the result.
    "request_tool_round_trip.json": (
        provider(),
        body(
            messages=[
                {"role": "user", "content": "What's the weather like in Paris today?"},
                {
                    "role": "assistant",
                    "content": [
                        {
                            "type": "tool_use",
                            "id": "call_12345xyz",
                            "name": "get_weather",
                            "input": {"latitude": 48.8566, "longitude": 2.3522},
                        }
                    ],
                },
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_12345xyz", "content": "14"}]},
            ],
            tools=[GET_WEATHER_TOOL],
        ),
    ),
    # https://platform.openai.com/docs/guides/images-vision (image by URL and as a base64 data URL)
    "request_vision.json": (
        provider(),
        body(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What's in this image?"},
                        {
                            "type": "image",
                            "source": {
                                "type": "url",
                                "url": "https://upload.wikimedia.org/wikipedia/commons/thumb/d/dd/"
                                "Gfp-wisconsin-madison-the-nature-boardwalk.jpg/2560px-Gfp-wisconsin-madison-"
                                "the-nature-boardwalk.jpg",
                            },
                        },
                        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
                    ],
                }
            ]
        ),
    ),
    # https://api-docs.deepseek.com/guides/thinking_mode (multi-round: prior reasoning sent back as reasoning_content)
    "request_deepseek_multiround.json": (
        provider(name="deepseek", base_url="https://api.deepseek.com", options={"reasoning_echo": True}),
        body(
            system="You are a helpful assistant.",
            messages=[
                {"role": "user", "content": "9.11 and 9.8, which is greater?"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "Compare the tenths.", "signature": SIGNATURE},
                        {"type": "text", "text": "9.8 is greater."},
                    ],
                },
                {"role": "user", "content": "How many Rs are there in the word 'strawberry'?"},
            ],
            thinking={"type": "enabled", "budget_tokens": 2048},
        ),
    ),
}


@pytest.mark.parametrize("streaming", [True, False], ids=["streaming", "not-streaming"])
@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_request_matches_the_documented_body(name: str, streaming: bool) -> None:
    """The fixtures are the documented streaming bodies; a non-streaming client's differs only in ``stream``."""
    config, request = REQUESTS[name]
    request = {**request, "stream": True} if streaming else request
    original = copy.deepcopy(request)
    upstream_model = "deepseek-reasoner" if "deepseek" in name else "gpt-4.1"
    built = build_request(route(config, upstream_model), request, INBOUND)
    assert request == original  # the client's body is not modified
    expected = fixture_json(name)
    if not streaming:
        del expected["stream_options"]
        expected["stream"] = False
    assert orjson.loads(built.body) == expected
