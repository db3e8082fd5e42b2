"""OpenAI Responses stream -> Anthropic events, incrementally (pure).

Events per https://platform.openai.com/docs/api-reference/responses-streaming: ``response.created``/``in_progress``
open the answer (message_start goes out at once, with the gateway's input estimate until the upstream reports).
``response.output_item.added`` announces each output item (``message``, ``function_call`` with its ``call_id`` and
``name``, ``reasoning``); ``response.output_text.delta``, ``response.function_call_arguments.delta`` (by
``output_index``/``item_id``, so parallel calls stay apart) and ``response.reasoning_summary_text.delta`` carry the
pieces, each relayed as a delta immediately. ``response.output_item.done`` carries the finished item: a reasoning
item's ``encrypted_content`` becomes the thinking block's signature (so the client echoes it back and items.py
restores it), and anything a server sent only in the done item (no deltas) is emitted then.
``response.completed``/``response.incomplete`` end the answer with ``usage``; ``response.failed`` and ``error`` end
it with an Anthropic ``error`` event, as does a stream that stops before any of them. There is no ``[DONE]``.
A whole Response JSON (a server that ignored ``stream``) is replayed through the same code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from gateway.sse import StreamError
from providers.adapters.common.builder import Event, EventBuilder
from providers.adapters.common.signatures import signature_mint
from providers.adapters.openai_responses.errors import error_event
from providers.adapters.openai_responses.wire import INCOMPLETE_REASONS, SIGNATURE_KIND, usage_from_responses
from providers.adapters.sse import SseParser

Json = dict[str, Any]
_TERMINAL = {"response.completed": "completed", "response.incomplete": "incomplete", "response.failed": "failed"}


class ResponsesBuilder(EventBuilder):
    def close_block(self) -> list[Event]:
        """Close the open block, so the next reasoning item gets a thinking block (and a signature) of its own."""
        return self.start() + self._close()


class ResponsesStreamState:
    """The builder plus what the Responses events need remembered between them."""

    def __init__(self, builder: ResponsesBuilder, names: dict[str, str], secret: bytes) -> None:
        self.builder = builder
        self.names = names
        self.secret = secret
        self.keys: dict[str, object] = {}  # item id -> tool key (its output_index)
        self.args: dict[object, str] = {}  # tool key -> arguments relayed so far (only for calls with a block)
        self.texts: set[str] = set()  # message items whose text was streamed
        self.thought: set[str] = set()  # reasoning items whose summary was streamed
        self.thinking_item: str | None = None  # the reasoning item whose thinking block is open
        self.refused = False
        self.handlers: dict[str, Callable[[Json], list[Event]]] = {
            "response.output_item.added": lambda d: self.item_added(_dict(d.get("item")), self._key(d, "item")),
            "response.output_item.done": lambda d: self.item_done(_dict(d.get("item")), self._key(d, "item")),
            "response.output_text.delta": lambda d: self._text(str(d.get("item_id") or ""), d.get("delta")),
            "response.refusal.delta": self._refusal,
            "response.function_call_arguments.delta": lambda d: self._arguments(self._key(d), d.get("delta")),
            "response.function_call_arguments.done": lambda d: self._arguments_done(self._key(d), d.get("arguments")),
            "response.reasoning_summary_part.added": self._summary_part,
            "response.reasoning_summary_text.delta": self._reasoning_delta,
            "response.reasoning_text.delta": self._reasoning_delta,  # raw reasoning (open-weight models)
            "error": lambda d: self.builder.fail(*error_event(d)),
        }

    def event(self, data: Json, name: str = "") -> list[Event]:
        if self.builder.finished:
            return []
        kind = str(data.get("type") or name)
        events = self.builder.start()
        if kind in _TERMINAL:
            response = _dict(data.get("response"))
            return events + self.finish(response, str(response.get("status") or _TERMINAL[kind]))
        handler = self.handlers.get(kind)
        # Lifecycle and ".done" events repeat what the deltas said; unknown events are newer than this code.
        return events + handler(data) if handler is not None else events

    def replay(self, response: Json) -> list[Event]:
        """A whole Response: each output item as if streamed without deltas, then its end."""
        events = self.builder.start()
        for index, item in enumerate(response.get("output") or []):
            events += self.item_added(_dict(item), index) + self.item_done(_dict(item), index)
        return events + self.finish(response, str(response.get("status") or "completed"))

    def finish(self, response: Json, status: str) -> list[Event]:
        if status == "failed":
            return self.builder.fail(*error_event(response.get("error")))
        if status == "incomplete":
            reason = _dict(response.get("incomplete_details")).get("reason")
            stop_reason = INCOMPLETE_REASONS.get(str(reason), "max_tokens")
        elif status == "completed":
            stop_reason = "tool_use" if self.builder.has_tool_calls else "refusal" if self.refused else "end_turn"
        else:  # cancelled, queued, in_progress: no finished answer
            return self.builder.fail("api_error", f"upstream response ended with status {status!r}")
        return self.builder.finish(stop_reason, usage=usage_from_responses(response.get("usage")))

    # --- output items ------------------------------------------------------------------------------------
    def item_added(self, item: Json, key: object) -> list[Event]:
        kind = item.get("type")
        if kind == "function_call":
            name = str(item.get("name") or "")
            if item.get("id"):
                self.keys[str(item["id"])] = key
            call_id = str(item.get("call_id") or item.get("id") or "")
            events = self.builder.tool_call(key, call_id=call_id, name=self.names.get(name, name))
            if events:
                self.thinking_item = None
                self.args[key] = ""
            return events + self._arguments(key, item.get("arguments"))
        if kind == "reasoning":
            self.thinking_item = None
            return self.builder.close_block()
        return []

    def item_done(self, item: Json, key: object) -> list[Event]:
        kind = item.get("type")
        item_id = str(item.get("id") or "")
        if kind == "function_call":
            if key not in self.args:  # announced only now (or its name came only now)
                return self.item_added(item, key)
            return self._arguments_done(key, item.get("arguments"))
        if kind == "message" and item_id not in self.texts:
            events: list[Event] = []
            for part in item.get("content") or []:
                part = _dict(part)
                if part.get("type") == "output_text":
                    events += self._text(item_id, part.get("text"))
                elif part.get("type") == "refusal":
                    events += self._refusal({"item_id": item_id, "delta": part.get("refusal")})
            return events
        if kind == "reasoning":
            return self._reasoning_done(item, item_id)
        return []

    def _reasoning_done(self, item: Json, item_id: str) -> list[Event]:
        events: list[Event] = []
        if item_id not in self.thought:
            parts = [_dict(p) for p in item.get("summary") or []] or [_dict(p) for p in item.get("content") or []]
            events += self._thinking(item_id, "\n\n".join(str(p["text"]) for p in parts if p.get("text")))
        encrypted = item.get("encrypted_content")
        if not item_id or not isinstance(encrypted, str) or not encrypted:
            return events  # nothing the upstream could continue from: the thinking block stays unsigned
        signature = signature_mint({"k": SIGNATURE_KIND, "id": item_id, "enc": encrypted}, self.secret)
        if self.thinking_item == item_id:
            return events + self.builder.signature(signature)
        # No summary to show: a redacted_thinking block still carries the reasoning to the next turn.
        self.thinking_item = None
        return events + self.builder.redacted_thinking(signature)

    # --- deltas ------------------------------------------------------------------------------------------
    def _text(self, item_id: str, text: Any) -> list[Event]:
        if not isinstance(text, str) or not text:
            return []
        self.texts.add(item_id)
        self.thinking_item = None
        return self.builder.text(text)

    def _refusal(self, data: Json) -> list[Event]:
        # A refusal is shown as text, and the turn ends as a refusal (Anthropic's stop_reason "refusal").
        self.refused = True
        return self._text(str(data.get("item_id") or ""), data.get("delta"))

    def _arguments(self, key: object, fragment: Any) -> list[Event]:
        if key not in self.args or not isinstance(fragment, str) or not fragment:
            return []
        self.args[key] += fragment
        return self.builder.tool_call(key, arguments=fragment)

    def _arguments_done(self, key: object, arguments: Any) -> list[Event]:
        """The rest of the arguments when a server sent fewer (or no) deltas than the final text."""
        sent = self.args.get(key)
        if sent is None or not isinstance(arguments, str) or not arguments.startswith(sent):
            return []
        return self._arguments(key, arguments[len(sent) :])

    def _summary_part(self, data: Json) -> list[Event]:
        item_id = str(data.get("item_id") or "")
        index = data.get("summary_index")
        if isinstance(index, int) and index > 0 and item_id in self.thought:
            return self._thinking(item_id, "\n\n")  # summary parts are paragraphs of one thinking block
        return []

    def _reasoning_delta(self, data: Json) -> list[Event]:
        return self._thinking(str(data.get("item_id") or ""), data.get("delta"))

    def _thinking(self, item_id: str, text: Any) -> list[Event]:
        if not isinstance(text, str) or not text:
            return []
        self.thought.add(item_id)
        self.thinking_item = item_id
        return self.builder.thinking(text)

    def _key(self, data: Json, item_field: str = "") -> object:
        """Tool calls are keyed by output_index; an event without one is matched by its item id."""
        item_id = str(_dict(data.get(item_field)).get("id") or "") if item_field else str(data.get("item_id") or "")
        if item_id in self.keys:
            return self.keys[item_id]
        index = data.get("output_index")
        return index if isinstance(index, int) else item_id


def _dict(value: Any) -> Json:
    return value if isinstance(value, dict) else {}


def _loads(data: str | bytes, what: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise StreamError({"type": "api_error", "message": f"upstream sent {what}: {exc}"}) from exc


class ResponsesSseDecoder:
    def __init__(self, state: ResponsesStreamState) -> None:
        self._state = state
        self._parser = SseParser()

    def feed(self, chunk: bytes) -> list[Event]:
        return self._events(self._parser.feed(chunk))

    def flush(self) -> list[Event]:
        events = self._events(self._parser.flush())
        if self._state.builder.finished:
            return events
        return events + self._state.builder.fail("api_error", "upstream stream ended without response.completed")

    def _events(self, items: list[Any]) -> list[Event]:
        events: list[Event] = []
        for item in items:
            if item.data.strip() == "[DONE]":  # not sent by OpenAI; some compatible servers add it
                continue
            data = _loads(item.data, "unparsable SSE data")
            if isinstance(data, dict):
                events += self._state.event(data, item.event)
        return events


class ResponsesJsonDecoder:
    """A whole Response (or an error object with HTTP 200), replayed as events at the end."""

    def __init__(self, state: ResponsesStreamState) -> None:
        self._state = state
        self._parts: list[bytes] = []

    def feed(self, chunk: bytes) -> list[Event]:
        self._parts.append(chunk)
        return []

    def flush(self) -> list[Event]:
        data = _loads(b"".join(self._parts), "invalid JSON")
        if isinstance(data, dict) and isinstance(data.get("output"), list):
            return self._state.replay(data)
        if isinstance(data, dict) and data.get("error") is not None:
            return self._state.builder.fail(*error_event(data["error"]))
        raise StreamError({"type": "api_error", "message": "upstream answer is not a Responses API response"})


def decoder_for(
    content_type: str, *, message_id: str, model: str, input_tokens: int, names: dict[str, str], secret: bytes
) -> ResponsesSseDecoder | ResponsesJsonDecoder:
    builder = ResponsesBuilder(message_id=message_id, model=model, input_tokens=input_tokens)
    state = ResponsesStreamState(builder, names, secret)
    if content_type.startswith("application/json"):
        return ResponsesJsonDecoder(state)
    return ResponsesSseDecoder(state)
