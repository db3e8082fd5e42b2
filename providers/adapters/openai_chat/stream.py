"""OpenAI chat completions stream -> Anthropic events, incrementally (pure).

Chunks per https://platform.openai.com/docs/api-reference/chat/streaming: ``choices[0].delta`` carries ``content``,
``tool_calls[]`` (by ``index``; ``id`` and ``function.name`` in the first fragment, ``function.arguments`` in
pieces) and, on reasoning servers, ``reasoning_content`` (DeepSeek, vLLM) or ``reasoning`` (OpenRouter, Ollama's
OpenAI endpoint). ``finish_reason`` may come in the same chunk as content. With ``stream_options.include_usage`` a
last chunk with empty ``choices`` carries ``usage``; ``data: [DONE]`` ends the stream. OpenRouter sends SSE comments
while it waits and may put an ``error`` object in a chunk (https://openrouter.ai/docs/api-reference/streaming).
A whole ChatCompletion JSON (a server that ignored ``stream``, or an error with HTTP 200) is replayed the same way.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import orjson

from gateway.sse import StreamError
from providers.adapters.common.builder import Event, EventBuilder
from providers.adapters.openai_chat.wire import STOP_REASONS
from providers.adapters.sse import SseEvent, SseParser

Json = dict[str, Any]


def usage_from_openai(usage: Json) -> dict[str, int]:
    """OpenAI counts cached prompt tokens inside prompt_tokens; Anthropic reports them apart."""
    prompt = int(usage.get("prompt_tokens") or 0)
    details = usage.get("prompt_tokens_details") or {}
    cached = int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
    # DeepSeek reports cache hits as prompt_cache_hit_tokens (https://api-docs.deepseek.com/guides/kv_cache).
    cached = cached or int(usage.get("prompt_cache_hit_tokens") or 0)
    return {
        "input_tokens": max(prompt - cached, 0),
        "output_tokens": int(usage.get("completion_tokens") or 0),
        "cache_read_input_tokens": cached,
    }


def error_message(data: Json) -> tuple[str, str]:
    """(anthropic error type, message) of an OpenAI/OpenRouter ``error`` object inside a 200 answer."""
    error = data.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        message = str(error.get("message") or "upstream error")
    else:
        code, message = None, str(error or "upstream error")
    kind = "overloaded_error" if code in (429, 502, 503, 529, "rate_limit_exceeded") else "api_error"
    return kind, f"upstream: {message}"


class ChatStreamState:
    """What the chunk decoders share: the builder plus the pending finish and usage."""

    def __init__(self, builder: EventBuilder, names: dict[str, str], stop_sequences: list[str]) -> None:
        self.builder = builder
        self.names = names
        self.stop_sequences = stop_sequences
        self.finish_reason: str | None = None
        self.matched_stop: str | None = None
        self.usage: dict[str, int] | None = None
        self._minted: dict[object, str] = {}  # ids for calls a server sent without one

    def chunk(self, data: Json) -> list[Event]:
        if data.get("error") is not None:
            kind, message = error_message(data)
            return self.builder.fail(kind, message)
        choices = data.get("choices")
        if choices and isinstance(choices[0], dict):
            choice = choices[0]
            events = self._delta(choice.get("delta") or choice.get("message") or {})
            finish_reason = choice.get("finish_reason")
            if finish_reason:
                self.finish_reason = str(finish_reason)
                # vLLM reports the matched stop string as choice.stop_reason.
                stop = choice.get("stop_reason")
                if isinstance(stop, str) and stop in self.stop_sequences:
                    self.matched_stop = stop
        else:
            events = self.builder.start()  # nothing once started
        usage = data.get("usage")
        if isinstance(usage, dict):
            self.usage = usage_from_openai(usage)
        return events

    def _delta(self, delta: Json) -> list[Event]:
        builder = self.builder
        events = [] if builder.started else builder.start()
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str):
            events += builder.thinking(reasoning)
        content = delta.get("content")
        if isinstance(content, str):
            events += builder.text(content)
        elif isinstance(content, list):
            events += self._content_parts(content)
        tool_calls = delta.get("tool_calls")
        if tool_calls:
            events += self._tool_calls(tool_calls)
        return events

    def _tool_calls(self, calls: list[Any]) -> list[Event]:
        events: list[Event] = []
        for position, call in enumerate(calls):
            function = call.get("function") or {}
            name = function.get("name") or ""
            arguments = function.get("arguments")
            if isinstance(arguments, dict):  # some servers send an object, not a JSON string
                arguments = orjson.dumps(arguments).decode()
            key = call.get("index", position)
            call_id = call.get("id") or self._minted.setdefault(key, f"toolu_{uuid.uuid4().hex[:24]}")
            events += self.builder.tool_call(
                key,
                call_id=str(call_id),
                name=self.names.get(name, name),
                arguments=arguments or "",
            )
        return events

    def _content_parts(self, parts: list[Any]) -> list[Event]:
        """Databricks reasoning models answer with a list of parts: ``reasoning`` (``summary[].text``) and ``text``
        (https://docs.databricks.com/aws/en/machine-learning/model-serving/query-reason-models)."""
        events: list[Event] = []
        for part in parts:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "reasoning":
                for summary in part.get("summary") or []:
                    if isinstance(summary, dict) and isinstance(summary.get("text"), str):
                        events += self.builder.thinking(summary["text"])
            elif part.get("type") == "text" and isinstance(part.get("text"), str):
                events += self.builder.text(part["text"])
        return events

    def done(self) -> list[Event]:
        if self.builder.finished:
            return []
        if self.finish_reason is None:
            return self.builder.fail("api_error", "upstream stream ended without a finish_reason")
        if self.finish_reason == "error":  # OpenRouter: the provider behind it failed mid-generation
            return self.builder.fail("api_error", "upstream reported finish_reason 'error'")
        stop_reason = STOP_REASONS.get(self.finish_reason, "end_turn")
        if self.matched_stop is not None:
            stop_reason = "stop_sequence"
        if stop_reason == "end_turn" and self.builder.has_tool_calls:
            stop_reason = "tool_use"  # some servers say "stop" after tool calls
        return self.builder.finish(stop_reason, stop_sequence=self.matched_stop, usage=self.usage)


class ChatSseDecoder:
    def __init__(self, state: ChatStreamState) -> None:
        self._state = state
        self._parser = SseParser()

    def feed(self, chunk: bytes) -> list[Event]:
        return self._events(self._parser.feed(chunk))

    def flush(self) -> list[Event]:
        return self._events(self._parser.flush()) + self._state.done()

    def _events(self, items: list[SseEvent]) -> list[Event]:
        events: list[Event] = []
        state = self._state
        builder = state.builder
        for _, data in items:
            if builder.finished:
                break
            if data[:1] != "{" and data.strip() == "[DONE]":  # a chunk (the usual) cannot be the end marker
                events += state.done()
                continue
            try:
                parsed = orjson.loads(data)
            except orjson.JSONDecodeError as exc:
                raise StreamError(
                    {"type": "api_error", "message": f"upstream sent unparsable SSE data: {exc}"}
                ) from exc
            if isinstance(parsed, dict):
                events += state.chunk(parsed)
        return events


class ChatJsonDecoder:
    """A whole ChatCompletion (or an error object with HTTP 200), replayed as events at the end."""

    def __init__(self, state: ChatStreamState) -> None:
        self._state = state
        self._parts: list[bytes] = []

    def feed(self, chunk: bytes) -> list[Event]:
        self._parts.append(chunk)
        return []

    def flush(self) -> list[Event]:
        try:
            data = orjson.loads(b"".join(self._parts))
        except orjson.JSONDecodeError as exc:
            raise StreamError({"type": "api_error", "message": f"upstream sent invalid JSON: {exc}"}) from exc
        if not isinstance(data, dict) or (not data.get("choices") and data.get("error") is None):
            # OpenRouter can answer 200 without `choices` when the model failed upstream.
            raise StreamError({"type": "api_error", "message": "upstream answer has no choices"})
        return self._state.chunk(data) + self._state.done()


def decoder_for(
    content_type: str,
    *,
    message_id: str,
    model: str,
    input_tokens: int,
    names: dict[str, str],
    stop_sequences: list[str],
    signer: Callable[[str], str] | None,
) -> ChatSseDecoder | ChatJsonDecoder:
    builder = EventBuilder(message_id=message_id, model=model, input_tokens=input_tokens, signer=signer)
    state = ChatStreamState(builder, names, stop_sequences)
    if content_type.startswith("application/json"):
        return ChatJsonDecoder(state)
    return ChatSseDecoder(state)
