"""Ollama ``/api/chat`` answer -> Anthropic events, incrementally (pure).

The stream is NDJSON (``application/x-ndjson``, docs/api/streaming.mdx): one JSON object per line, each with a
``message`` fragment: ``thinking`` and ``content`` text, and ``tool_calls`` that arrive whole (name and an
``arguments`` object, no call id) rather than in fragments (docs/api.md "Chat request (Streaming with tools)"). The
last line has ``done: true``, ``done_reason`` ("stop", "length", "load", ...; absent from older servers) and the
counts ``prompt_eval_count`` / ``eval_count``. A failure after the first byte is a line ``{"error": "..."}`` and
the HTTP status stays 200 (docs/api/errors.mdx). Lines may be split anywhere across network chunks.
A ``stream: false`` answer (``application/json``) is the same object once, replayed the same way.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import orjson

from gateway.sse import StreamError
from providers.adapters.common.builder import Event, EventBuilder
from providers.adapters.ollama.wire import STOP_REASONS

Json = dict[str, Any]


def tool_id_mint() -> str:
    """Ollama's tool calls have no id; Anthropic clients need one to pair the tool_result with its call."""
    return "toolu_" + secrets.token_hex(12)


class OllamaStreamState:
    """Turns decoded answer objects into events; shared by the NDJSON and the whole-JSON decoders."""

    def __init__(self, builder: EventBuilder, mint_id: Callable[[], str] = tool_id_mint) -> None:
        self.builder = builder
        self._mint_id = mint_id
        self._calls = 0

    def line(self, data: Json) -> list[Event]:
        if data.get("error") is not None:
            return self.builder.fail("api_error", f"upstream: {data['error']}")
        events = self.builder.start()
        message = data.get("message")
        if isinstance(message, dict):
            events += self._message(message)
        if data.get("done") is True and not self.builder.finished:
            events += self._done(data)
        return events

    def _message(self, message: Json) -> list[Event]:
        events: list[Event] = []
        thinking = message.get("thinking")
        if isinstance(thinking, str):
            events += self.builder.thinking(thinking)
        content = message.get("content")
        if isinstance(content, str):
            events += self.builder.text(content)
        for call in message.get("tool_calls") or []:
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict) or not function.get("name"):
                return events + self.builder.fail("api_error", f"upstream sent a tool call without a name: {call!r}")
            arguments = function.get("arguments")  # an object in Ollama's API; a JSON string is taken as it is
            if isinstance(arguments, str) and arguments.strip():
                raw = arguments
            else:
                raw = orjson.dumps(arguments if isinstance(arguments, dict) else {}).decode()
            events += self.builder.tool_call(
                self._calls, call_id=self._mint_id(), name=str(function["name"]), arguments=raw
            )
            self._calls += 1
        return events

    def _done(self, data: Json) -> list[Event]:
        stop_reason = STOP_REASONS.get(str(data.get("done_reason") or "stop"), "end_turn")
        if stop_reason == "end_turn" and self.builder.has_tool_calls:
            stop_reason = "tool_use"  # Ollama says "stop" after tool calls
        # Ollama reports no matched stop string, so "stop_sequence" cannot be told apart from end of turn.
        usage = {
            target: value
            for source, target in (("prompt_eval_count", "input_tokens"), ("eval_count", "output_tokens"))
            if isinstance(value := data.get(source), int)
        }
        return self.builder.finish(stop_reason, usage=usage or None)

    def end(self) -> list[Event]:
        if self.builder.finished:
            return []
        return self.builder.fail("api_error", "upstream stream ended before its final (done) line")


def _parse(raw: bytes) -> Json:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise StreamError({"type": "api_error", "message": f"upstream sent invalid JSON: {exc}"}) from exc
    if not isinstance(data, dict):
        raise StreamError({"type": "api_error", "message": "upstream sent JSON that is not an object"})
    return data


class OllamaNdjsonDecoder:
    def __init__(self, state: OllamaStreamState) -> None:
        self._state = state
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[Event]:
        self._buffer += chunk
        if b"\n" not in chunk:
            return []  # the buffer holds no complete line: every earlier one was consumed
        *lines, self._buffer = self._buffer.split(b"\n")
        return self._lines(lines)

    def flush(self) -> list[Event]:
        rest, self._buffer = self._buffer, b""
        return self._lines([rest]) + self._state.end()

    def _lines(self, lines: list[bytes]) -> list[Event]:
        events: list[Event] = []
        for line in lines:
            line = line.strip()  # also a CR of CRLF line ends
            if line and not self._state.builder.finished:
                events += self._state.line(_parse(line))
        return events


class OllamaJsonDecoder:
    """A whole ``stream: false`` answer (or an error object with HTTP 200), replayed as events at the end."""

    def __init__(self, state: OllamaStreamState) -> None:
        self._state = state
        self._parts: list[bytes] = []

    def feed(self, chunk: bytes) -> list[Event]:
        self._parts.append(chunk)
        return []

    def flush(self) -> list[Event]:
        return self._state.line(_parse(b"".join(self._parts))) + self._state.end()


def decoder_for(
    content_type: str,
    *,
    message_id: str,
    model: str,
    input_tokens: int,
    signer: Callable[[str], str] | None,
    mint_id: Callable[[], str] = tool_id_mint,
) -> OllamaNdjsonDecoder | OllamaJsonDecoder:
    builder = EventBuilder(message_id=message_id, model=model, input_tokens=input_tokens, signer=signer)
    state = OllamaStreamState(builder, mint_id)
    if content_type.startswith("application/json"):
        return OllamaJsonDecoder(state)
    return OllamaNdjsonDecoder(state)
