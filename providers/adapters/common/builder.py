"""Builds a well-formed Anthropic event stream from another backend's incremental output (pure).

Decoders call ``text()``, ``thinking()``, ``tool_call()`` as upstream fragments arrive and get back the Anthropic
events to emit at once (https://docs.anthropic.com/en/api/messages-streaming): every fragment becomes a delta
immediately, nothing is held until the end. Blocks are opened and closed as the upstream moves from one kind of
output to the next, so the order is the upstream's (thinking -> text -> tool_use in practice). A thinking block is
closed with a ``signature_delta`` (minted by the adapter's signer) because clients echo thinking blocks back with
their signature. ``finish()`` closes everything and reports the stop reason and usage; ``fail()`` ends the stream
with an ``error`` event, never a fake ``end_turn``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Event = dict[str, Any]


class EventBuilder:
    def __init__(
        self,
        *,
        message_id: str,
        model: str,
        input_tokens: int = 0,
        signer: Callable[[str], str] | None = None,
    ) -> None:
        self.message_id = message_id
        self.model = model
        self.usage: dict[str, int] = {"input_tokens": input_tokens, "output_tokens": 0}
        self._signer = signer
        self.started = False
        self.finished = False
        self._count = 0  # blocks opened so far
        self._open: tuple[str, object] | None = None  # (kind, key) of the open block
        self._open_index = -1
        self._thinking: list[str] = []
        self._signed = False
        self._tools: dict[object, int] = {}  # upstream tool key -> our block index

    # --- lifecycle ---------------------------------------------------------------------------------------
    def start(self, input_tokens: int | None = None) -> list[Event]:
        if self.started:
            return []
        if input_tokens is not None:
            self.usage["input_tokens"] = input_tokens
        self.started = True
        message: dict[str, Any] = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.usage["input_tokens"], "output_tokens": 0},
        }
        return [{"type": "message_start", "message": message}]

    def finish(
        self, stop_reason: str, *, stop_sequence: str | None = None, usage: dict[str, int] | None = None
    ) -> list[Event]:
        if self.finished:
            return []
        events = self.start() + self._close()
        if usage:
            self.usage.update({k: v for k, v in usage.items() if v is not None})
        self.finished = True
        events.append(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                "usage": dict(self.usage),
            }
        )
        events.append({"type": "message_stop"})
        return events

    def fail(self, error_type: str, message: str) -> list[Event]:
        self.finished = True
        return [{"type": "error", "error": {"type": error_type, "message": message}}]

    # --- content -----------------------------------------------------------------------------------------
    def text(self, text: str) -> list[Event]:
        if not text:
            return []
        events = self._ensure("text", None, {"type": "text", "text": ""})
        events.append(
            {"type": "content_block_delta", "index": self._open_index, "delta": {"type": "text_delta", "text": text}}
        )
        return events

    def thinking(self, text: str) -> list[Event]:
        if not text:
            return []
        events = self._ensure("thinking", None, {"type": "thinking", "thinking": "", "signature": ""})
        self._thinking.append(text)
        events.append(
            {
                "type": "content_block_delta",
                "index": self._open_index,
                "delta": {"type": "thinking_delta", "thinking": text},
            }
        )
        return events

    def signature(self, signature: str) -> list[Event]:
        """An explicit signature for the open thinking block (e.g. carrying a backend's encrypted reasoning)."""
        if self._open is None or self._open[0] != "thinking" or not signature:
            return []
        self._signed = True
        return [
            {
                "type": "content_block_delta",
                "index": self._open_index,
                "delta": {"type": "signature_delta", "signature": signature},
            }
        ]

    def redacted_thinking(self, data: str) -> list[Event]:
        events = self.start() + self._close()
        index = self._count
        self._count += 1
        events.append(
            {
                "type": "content_block_start",
                "index": index,
                "content_block": {"type": "redacted_thinking", "data": data},
            }
        )
        events.append({"type": "content_block_stop", "index": index})
        return events

    def tool_call(self, key: object, *, call_id: str = "", name: str = "", arguments: str = "") -> list[Event]:
        """A tool call or a fragment of one. ``key`` identifies the call across fragments (OpenAI's index)."""
        events: list[Event] = []
        index = self._tools.get(key)
        if index is None:
            if not name:
                # Arguments before the name: some servers send an empty first fragment. Nothing to anchor it to.
                return events
            events += self._ensure("tool", key, {"type": "tool_use", "id": call_id, "name": name, "input": {}})
            index = self._open_index
            self._tools[key] = index
        # A fragment for a call whose block was already closed (parallel calls interleaved by the upstream) is still
        # sent at once, addressed by its block index as every Anthropic delta is.
        if arguments:
            events.append(
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": arguments},
                }
            )
        return events

    def close_block(self) -> list[Event]:
        """Close the open block now (a backend that says when an item is done)."""
        return self._close()

    @property
    def has_tool_calls(self) -> bool:
        return bool(self._tools)

    # --- internals ---------------------------------------------------------------------------------------
    def _ensure(self, kind: str, key: object, block: dict[str, Any]) -> list[Event]:
        if self._open == (kind, key):
            return []
        events = self.start() + self._close()
        self._open = (kind, key)
        self._open_index = self._count
        self._count += 1
        events.append({"type": "content_block_start", "index": self._open_index, "content_block": block})
        return events

    def _close(self) -> list[Event]:
        if self._open is None:
            return []
        events: list[Event] = []
        kind = self._open[0]
        if kind == "thinking" and not self._signed and self._signer is not None:
            events.append(
                {
                    "type": "content_block_delta",
                    "index": self._open_index,
                    "delta": {"type": "signature_delta", "signature": self._signer("".join(self._thinking))},
                }
            )
        events.append({"type": "content_block_stop", "index": self._open_index})
        self._open = None
        self._thinking = []
        self._signed = False
        return events
