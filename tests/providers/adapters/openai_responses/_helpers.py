"""Shared pieces of the openai_responses adapter tests (no network)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from gateway.sse import Accumulator
from providers.adapters.base import InboundContext
from providers.adapters.common.signatures import signature_mint
from providers.adapters.openai_responses.stream import decoder_for
from providers.adapters.openai_responses.translate import build_body
from providers.routing import ProviderConfig, Route

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = b"lynkr-test-signing-key"
INBOUND = InboundContext(request_id="req_42", input_estimate=1234, signing_key=SECRET)
Event = dict[str, Any]
Json = dict[str, Any]


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def provider(**changes: Any) -> ProviderConfig:
    fields: dict[str, Any] = {
        "id": 7,
        "name": "openai",
        "kind": "openai_responses",
        "base_url": "https://api.openai.com",
        "credential": "sk-provider-secret",
        "auth_style": "bearer",
        "supports_thinking": True,
        "connect_timeout": 3.0,
        "read_timeout": 120.0,
    }
    return ProviderConfig(**{**fields, **changes})


def route(p: ProviderConfig | None = None, upstream_model: str = "gpt-5") -> Route:
    return Route(p or provider(), upstream_model, "claude-opus-5-5")


def chunkings(data: bytes) -> dict[str, list[bytes]]:
    out = {"whole": [data], "1 byte": [data[i : i + 1] for i in range(len(data))]}
    for width in (2, 3, 7, 64, 333, 1000):
        out[f"{width} bytes"] = [data[i : i + width] for i in range(0, len(data), width)]
    cuts, position, step = [], 0, 1
    while position < len(data):  # uneven cuts that wander through the stream (fixed, so failures reproduce)
        cuts.append(data[position : position + step])
        position += step
        step = step * 7 % 97 + 1
    out["uneven"] = cuts
    return out


def decode(
    chunks: list[bytes],
    *,
    content_type: str = "text/event-stream",
    names: dict[str, str] | None = None,
    secret: bytes = SECRET,
) -> list[Event]:
    decoder = decoder_for(
        content_type,
        message_id="msg_test",
        model="claude-opus-5-5",
        input_tokens=1234,
        names=names or {},
        secret=secret,
    )
    events: list[Event] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events + decoder.flush()


def fold(events: list[Event]) -> dict[str, Any]:
    acc = Accumulator()
    for event in events:
        acc.feed(event)
    return acc.result()


def sse(*events: dict[str, Any]) -> bytes:
    """Upstream SSE bytes of Responses events (each with its ``event:`` line, as OpenAI sends them)."""
    return b"".join(
        b"event: " + str(e.get("type", "")).encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events
    )


# --- requests ---------------------------------------------------------------------------------------------------


def request_body(messages: list[Json] | None = None, **fields: Any) -> Json:
    return {"model": "claude-opus-5-5", "max_tokens": 1024, "messages": messages or [], **fields}


def build(body: Json, **provider_changes: Any) -> Json:
    return build_body(route(provider(**provider_changes)), body, SECRET)


def input_of(messages: list[Json], **provider_changes: Any) -> list[Json]:
    items: list[Json] = build(request_body(messages), **provider_changes)["input"]
    return items


def user_turn(*blocks: Json) -> Json:
    return {"role": "user", "content": list(blocks)}


def assistant_turn(*blocks: Json) -> Json:
    return {"role": "assistant", "content": list(blocks)}


def text_block(text: str) -> Json:
    return {"type": "text", "text": text}


def sig(**payload: Any) -> str:
    return signature_mint(payload, SECRET)


PNG = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
PNG_PART = {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "auto"}


SIGNED = "SIGNED"  # stands for a minted signature in expected messages (signatures are checked apart)


def without_signatures(message: Json) -> Json:
    """The folded message with every non-empty signature replaced by SIGNED."""
    content = [{**b, "signature": SIGNED} if b.get("signature") else b for b in message["content"]]
    return {**message, "content": content}


# --- upstream Responses events --------------------------------------------------------------------------------


def added(index: int, item: Json) -> Json:
    return {"type": "response.output_item.added", "output_index": index, "item": item}


def done(index: int, item: Json) -> Json:
    return {"type": "response.output_item.done", "output_index": index, "item": item}


def completed(status: str = "completed", **response: Any) -> Json:
    return {"type": "response.completed", "response": {"status": status, **response}}
