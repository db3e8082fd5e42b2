"""Incremental decoding of an Anthropic-format upstream's answer into stream events (pure).

SSE per https://docs.anthropic.com/en/api/messages-streaming. An upstream that sends data-only SSE (no
``event:`` lines) is accepted: the event type is in the JSON. An upstream that answers a streaming request
with a whole JSON Message is accepted too and re-played as events.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.sse import StreamError, message_to_events
from providers.adapters.sse import SseParser

Event = dict[str, Any]


class AnthropicSseDecoder:
    __slots__ = ("_parser",)

    def __init__(self) -> None:
        self._parser = SseParser()

    def feed(self, chunk: bytes) -> list[Event]:
        return [self._event(item.event, item.data) for item in self._parser.feed(chunk)]

    def flush(self) -> list[Event]:
        return [self._event(item.event, item.data) for item in self._parser.flush()]

    @staticmethod
    def _event(name: str, data: str) -> Event:
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise StreamError({"type": "api_error", "message": f"upstream sent unparsable SSE data: {exc}"}) from exc
        if not isinstance(event, dict):
            raise StreamError({"type": "api_error", "message": "upstream SSE data is not a JSON object"})
        if "type" not in event and name:
            event["type"] = name
        return event


class AnthropicJsonDecoder:
    """For an upstream that ignored ``stream: true``: buffer the Message, then replay it as events."""

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def feed(self, chunk: bytes) -> list[Event]:
        self._parts.append(chunk)
        return []

    def flush(self) -> list[Event]:
        try:
            message = orjson.loads(b"".join(self._parts))
        except orjson.JSONDecodeError as exc:
            raise StreamError({"type": "api_error", "message": f"upstream sent invalid JSON: {exc}"}) from exc
        if not isinstance(message, dict) or message.get("type") != "message":
            raise StreamError({"type": "api_error", "message": "upstream answer is not an Anthropic Message"})
        return message_to_events(message)
