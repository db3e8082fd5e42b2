"""Anthropic SSE: the pure encoder, and ``Accumulator`` which folds the event stream into a final Message.

The non-streaming answer is the fold of the same event stream the streaming answer relays, so the two paths
cannot drift apart. Event shapes: https://docs.anthropic.com/en/api/messages-streaming. Every event is
written with its ``event:`` line: Claude Code ignores data-only SSE and would redo each turn non-streaming
(claude-code-wire.md §4).
"""

from __future__ import annotations

from typing import Any

import orjson

Event = dict[str, Any]


# The ``event:`` line and the data field name of every event type, encoded once (encode runs per event).
_HEADS = {
    kind: b"event: " + kind.encode() + b"\ndata: "
    for kind in (
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
        "error",
    )
}


def encode(event: Event) -> bytes:
    kind = event["type"]
    head = _HEADS.get(kind) if type(kind) is str else None
    if head is None:
        head = b"event: " + str(kind).encode() + b"\ndata: "
    return head + orjson.dumps(event) + b"\n\n"


class StreamError(Exception):
    """The upstream sent an ``error`` event; ``error`` is its ``{"type", "message"}``."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(str(error.get("message", "upstream stream error")))
        self.error = error


class Accumulator:
    """Folds Anthropic stream events into the Message a non-streaming call returns."""

    __slots__ = ("_json", "broken", "message", "usage")

    def __init__(self) -> None:
        self.broken = False
        self.message: dict[str, Any] | None = None
        self.usage: dict[str, Any] = {}
        self._json: dict[int, list[str]] = {}

    def feed(self, event: Event) -> None:
        kind = event.get("type")
        if kind == "content_block_delta":  # nearly every event: tested first
            self._delta(int(event.get("index", 0)), event.get("delta") or {})
        elif kind == "message_start":
            self.message = dict(event.get("message") or {})
            self.message["content"] = list(self.message.get("content") or [])
            self.usage = dict(self.message.get("usage") or {})
        elif kind == "content_block_start":
            content = self._content()
            index = int(event.get("index", len(content)))
            while len(content) <= index:
                content.append({})
            content[index] = dict(event.get("content_block") or {})
        elif kind == "content_block_stop":
            self._finish_block(int(event.get("index", 0)))
        elif kind == "message_delta":
            message = self._require_message()
            for key, value in (event.get("delta") or {}).items():
                message[key] = value
            self.usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
        elif kind == "error":
            raise StreamError(dict(event.get("error") or {}))
        # "ping", "message_stop" and event types added later carry nothing to fold.

    def feed_safely(self, event: Event) -> None:
        """Fold for bookkeeping (transcripts): a malformed or error event must not break the client's stream."""
        try:
            self.feed(event)
        except (StreamError, KeyError, TypeError, ValueError, IndexError):
            self.broken = True

    def result_or_none(self) -> dict[str, Any] | None:
        if self.broken or self.message is None:
            return None
        try:
            return self.result()
        except StreamError:
            return None

    def result(self) -> dict[str, Any]:
        message = self._require_message()
        for index in list(self._json):
            self._finish_block(index, final=True)  # also folds fragments that arrived after their block's stop
        message["usage"] = self.usage
        return message

    def _require_message(self) -> dict[str, Any]:
        if self.message is None:
            raise StreamError({"type": "api_error", "message": "upstream stream did not start with message_start"})
        return self.message

    def _content(self) -> list[dict[str, Any]]:
        content: list[dict[str, Any]] = self._require_message()["content"]
        return content

    def _delta(self, index: int, delta: dict[str, Any]) -> None:
        content = self._content()
        if index >= len(content):
            raise StreamError({"type": "api_error", "message": f"delta for unknown content block {index}"})
        block = content[index]
        kind = delta.get("type")
        if kind == "text_delta":
            block["text"] = block.get("text", "") + delta.get("text", "")
        elif kind == "input_json_delta":
            self._json.setdefault(index, []).append(delta.get("partial_json", ""))
        elif kind == "thinking_delta":
            block["thinking"] = block.get("thinking", "") + delta.get("thinking", "")
        elif kind == "signature_delta":
            block["signature"] = block.get("signature", "") + delta.get("signature", "")
        elif kind == "citations_delta":
            if block.get("citations") is None:  # a block may start with "citations": null
                block["citations"] = []
            block["citations"].append(delta.get("citation"))

    def _finish_block(self, index: int, *, final: bool = False) -> None:
        parts = self._json.get(index)
        if parts is None:
            return
        raw = "".join(parts)
        content = self._content()
        try:
            content[index]["input"] = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError as exc:
            # Interleaved parallel calls may complete a block's arguments after its stop: judge at the end.
            if final:
                raise StreamError(
                    {"type": "api_error", "message": f"upstream sent invalid tool input JSON: {exc}"}
                ) from exc


def message_to_events(message: dict[str, Any]) -> list[Event]:
    """The event sequence that streams ``message`` (for upstreams that answered with a whole Message)."""
    content = list(message.get("content") or [])
    usage = dict(message.get("usage") or {})
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
    start["usage"] = {**usage, "output_tokens": 0}
    events: list[Event] = [{"type": "message_start", "message": start}]
    for index, block in enumerate(content):
        kind = block.get("type")
        if kind == "text":
            events.append({"type": "content_block_start", "index": index, "content_block": {**block, "text": ""}})
            if block.get("text"):
                events.append(
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "text_delta", "text": block["text"]},
                    }
                )
        elif kind == "tool_use":
            events.append({"type": "content_block_start", "index": index, "content_block": {**block, "input": {}}})
            events.append(
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {
                        "type": "input_json_delta",
                        "partial_json": orjson.dumps(block.get("input") or {}).decode(),
                    },
                }
            )
        elif kind == "thinking":
            start_block = {**block, "thinking": "", "signature": ""}
            events.append({"type": "content_block_start", "index": index, "content_block": start_block})
            if block.get("thinking"):
                events.append(
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "thinking_delta", "thinking": block["thinking"]},
                    }
                )
            if block.get("signature"):
                events.append(
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "signature_delta", "signature": block["signature"]},
                    }
                )
        else:
            # Blocks without deltas (redacted_thinking, server tool results ...) arrive whole in the start event.
            events.append({"type": "content_block_start", "index": index, "content_block": block})
        events.append({"type": "content_block_stop", "index": index})
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": message.get("stop_reason"), "stop_sequence": message.get("stop_sequence")},
            "usage": {"output_tokens": usage.get("output_tokens", 0)},
        }
    )
    events.append({"type": "message_stop"})
    return events
