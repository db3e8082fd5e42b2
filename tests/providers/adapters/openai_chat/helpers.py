"""Shared builders for the OpenAI-chat, Azure OpenAI and common adapter tests (pure; no network)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson

from gateway.sse import Accumulator
from providers.adapters.base import InboundContext
from providers.adapters.common.signatures import signature_mint
from providers.adapters.openai_chat.adapter import OpenAIChatAdapter
from providers.routing import ProviderConfig, Route

Json = dict[str, Any]

FIXTURES = Path(__file__).parent / "fixtures"
PROVIDER_KEY = "sk-proj-provider-secret-0123456789"
CLIENT_KEY = "sk-lynkr-abcd1234_" + "S" * 40
SIGNING_KEY = b"lynkr-test-signing-key"
CLIENT_MODEL = "claude-opus-4-8"
MESSAGE_ID = "msg_test"
INPUT_ESTIMATE = 42
INBOUND = InboundContext(request_id="req_42", input_estimate=INPUT_ESTIMATE, signing_key=SIGNING_KEY)
# What the adapter signs each thinking block with (the HMAC makes it recognisable, see test_signatures.py).
SIGNATURE = signature_mint({"k": "openai_chat"}, SIGNING_KEY)


def provider(**changes: Any) -> ProviderConfig:
    fields: dict[str, Any] = {
        "id": 7,
        "name": "openai",
        "kind": "openai_chat",
        "base_url": "https://api.openai.com/v1",
        "credential": PROVIDER_KEY,
        "auth_style": "bearer",
        "connect_timeout": 3.0,
        "read_timeout": 120.0,
    }
    return ProviderConfig(**{**fields, **changes})


def route(config: ProviderConfig | None = None, upstream_model: str = "gpt-4o") -> Route:
    return Route(config or provider(), upstream_model, CLIENT_MODEL)


def body(**changes: Any) -> Json:
    out: Json = {"model": CLIENT_MODEL, "max_tokens": 1024, "messages": [{"role": "user", "content": "Hello"}]}
    out.update(changes)
    return out


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> Json:
    data: Json = orjson.loads(fixture(name))
    return data


def content_type_of(name: str) -> str:
    return "application/json" if name.endswith(".json") else "text/event-stream"


def decode(
    chunks: list[bytes],
    request: Json | None = None,
    content_type: str = "text/event-stream",
    adapter: OpenAIChatAdapter | None = None,
    config: ProviderConfig | None = None,
) -> list[Json]:
    """Feed the chunks to the adapter's decoder and flush; the random message id is checked and replaced."""
    decoder = (adapter or OpenAIChatAdapter()).stream_decoder(route(config), request or body(), INBOUND, content_type)
    events: list[Json] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    events += decoder.flush()
    return normalise(events)


def normalise(events: list[Json]) -> list[Json]:
    for event in events:
        if event.get("type") == "message_start":
            assert re.fullmatch(r"msg_[0-9a-f]{24}", event["message"]["id"]), event
            event["message"]["id"] = MESSAGE_ID
    return events


def fold(events: list[Json]) -> Json:
    acc = Accumulator()
    for event in events:
        acc.feed(event)
    return acc.result()


def chunkings(data: bytes) -> dict[str, list[bytes]]:
    out = {"whole": [data], "1 byte": [data[i : i + 1] for i in range(len(data))]}
    for width in (2, 3, 7, 64, 333):
        out[f"{width} bytes"] = [data[i : i + width] for i in range(0, len(data), width)]
    cuts, position, step = [], 0, 1
    while position < len(data):
        cuts.append(data[position : position + step])
        position += step
        step = step * 7 % 97 + 1
    out["uneven"] = cuts
    return out


# --- upstream chunks ------------------------------------------------------------------------------------------


def chunk(delta: Json | None = None, finish: str | None = None, **extra: Any) -> Json:
    choice: Json = {"index": 0, "delta": delta if delta is not None else {}, "finish_reason": finish}
    choice.update(extra.pop("choice", {}))
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "gpt-4o", "choices": [choice], **extra}


def sse(*items: Json | str, done: bool = True) -> bytes:
    """An upstream SSE body: each item a ``data:`` event (a dict as JSON, a str as is), then ``[DONE]``."""
    out = b""
    for item in items:
        out += b"data: " + (item.encode() if isinstance(item, str) else orjson.dumps(item)) + b"\n\n"
    if done:
        out += b"data: [DONE]\n\n"
    return out


def tool_delta(index: int, arguments: str = "", call_id: str | None = None, name: str | None = None) -> Json:
    function: Json = {"arguments": arguments}
    call: Json = {"index": index, "function": function}
    if call_id is not None:
        call["id"] = call_id
        call["type"] = "function"
    if name is not None:
        function["name"] = name
    return {"tool_calls": [call]}


# --- expected Anthropic events --------------------------------------------------------------------------------


def message_start(input_tokens: int = INPUT_ESTIMATE) -> Json:
    return {
        "type": "message_start",
        "message": {
            "id": MESSAGE_ID,
            "type": "message",
            "role": "assistant",
            "model": CLIENT_MODEL,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": 0},
        },
    }


def block_start(index: int, block: Json) -> Json:
    return {"type": "content_block_start", "index": index, "content_block": block}


def text_start(index: int) -> Json:
    return block_start(index, {"type": "text", "text": ""})


def thinking_start(index: int) -> Json:
    return block_start(index, {"type": "thinking", "thinking": "", "signature": ""})


def tool_start(index: int, call_id: str, name: str) -> Json:
    return block_start(index, {"type": "tool_use", "id": call_id, "name": name, "input": {}})


def text_delta(index: int, text: str) -> Json:
    return {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}}


def thinking_delta(index: int, text: str) -> Json:
    return {"type": "content_block_delta", "index": index, "delta": {"type": "thinking_delta", "thinking": text}}


def signature_delta(index: int, signature: str = SIGNATURE) -> Json:
    return {"type": "content_block_delta", "index": index, "delta": {"type": "signature_delta", "signature": signature}}


def json_delta(index: int, partial: str) -> Json:
    return {
        "type": "content_block_delta",
        "index": index,
        "delta": {"type": "input_json_delta", "partial_json": partial},
    }


def block_stop(index: int) -> Json:
    return {"type": "content_block_stop", "index": index}


def message_delta(stop_reason: str, usage: Json, stop_sequence: str | None = None) -> Json:
    return {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
        "usage": usage,
    }


MESSAGE_STOP: Json = {"type": "message_stop"}


def usage(input_tokens: int, output_tokens: int, cached: int | None = 0) -> Json:
    out: Json = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    if cached is not None:
        out["cache_read_input_tokens"] = cached
    return out


def error_event(kind: str, message: str) -> Json:
    return {"type": "error", "error": {"type": kind, "message": message}}


def message(content: list[Json], stop_reason: str, usage_: Json, stop_sequence: str | None = None) -> Json:
    return {
        "id": MESSAGE_ID,
        "type": "message",
        "role": "assistant",
        "model": CLIENT_MODEL,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": usage_,
    }


def keys_anywhere(value: Any) -> set[str]:
    """Every dict key in a JSON value, at any depth."""
    if isinstance(value, dict):
        out = set(value)
        for item in value.values():
            out |= keys_anywhere(item)
        return out
    if isinstance(value, list):
        out = set()
        for item in value:
            out |= keys_anywhere(item)
        return out
    return set()
