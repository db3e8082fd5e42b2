"""Scripted mock of Ollama's native API, served over real HTTP on loopback.

``POST /api/chat`` (NDJSON stream unless ``"stream": false``), ``GET /api/tags``,
``POST /api/show``, ``GET /api/version``, ``GET /api/ps`` and ``GET /`` ("Ollama is running").

Wire format: https://github.com/ollama/ollama/blob/main/docs/api.md and
https://docs.ollama.com/api (chat: ``messages[].content`` is a plain string,
``images`` a list of raw base64 strings (no ``data:`` prefix), ``tool_calls[].function.arguments``
an object, not a JSON string; tool results are ``role: "tool"`` messages with an optional
``tool_name`` and no call id; ``think`` (bool or "low"/"medium"/"high") puts reasoning in
``message.thinking``; each stream line is a JSON object, the last one ``done: true`` with
``done_reason``, ``prompt_eval_count`` and ``eval_count``; errors are ``{"error": "<text>"}``),
https://ollama.com/blog/streaming-tool (tool calls arrive whole, in one stream line),
https://ollama.com/blog/thinking, and /api/show's ``model_info["<arch>.context_length"]``
and ``capabilities`` (e.g. ["completion", "tools", "vision", "thinking"]).
Models without "tools"/"thinking" refuse those requests with 400, as Ollama does;
images sent to a model without "vision" are dropped (the brain never sees them).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tests.mocks.base import (
    JSON,
    MockUpstreamBase,
    RecordedRequest,
    ScriptedResponse,
    estimate_tokens,
    json_type,
    ndjson_line,
    split_text,
)
from tests.mocks.brain import Brain, Reply, ToolCall, Turn

__all__ = [
    "DEFAULT_MODELS",
    "NDJSON",
    "MockOllamaUpstream",
    "RecordedRequest",
    "ScriptedResponse",
    "chat_json",
    "chat_lines",
    "ollama_error",
    "to_turns",
]

NDJSON = "application/x-ndjson"
DEFAULT_MODELS: dict[str, dict[str, Any]] = {
    "qwen3:8b": {"context_length": 40960, "capabilities": ["completion", "tools", "thinking"]},
}


class OllamaError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def ollama_error(status: int, message: str) -> ScriptedResponse:
    """An Ollama error body: ``{"error": "<message>"}``."""
    return ScriptedResponse(status=status, body={"error": message})


def _full_name(name: str) -> str:
    return name if ":" in name else f"{name}:latest"


def _architecture(name: str, config: Mapping[str, Any]) -> str:
    if isinstance(config.get("architecture"), str):
        return str(config["architecture"])
    found = re.match(r"[a-zA-Z]+\d*", name)
    return found.group() if found else "llama"


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


# --- request -> neutral conversation -------------------------------------------------


def _check_images(images: Any, index: int) -> int:
    if images is None:
        return 0
    if not isinstance(images, list):
        raise OllamaError(
            400,
            f"json: cannot unmarshal {json_type(images)} into Go struct field Message.messages.images "
            "of type []api.ImageData",
        )
    for image in images:
        try:
            base64.b64decode(str(image), validate=True)
        except (binascii.Error, ValueError):
            # Go's []byte JSON decoding; typical cause: a "data:image/png;base64," prefix left in place.
            raise OllamaError(400, f"illegal base64 data in messages[{index}].images") from None
    return len(images)


def _assistant_calls(calls: Any, index: int) -> list[ToolCall]:
    out: list[ToolCall] = []
    for position, call in enumerate(calls or []):
        function = call.get("function") if isinstance(call, dict) else None
        arguments = function.get("arguments") if isinstance(function, dict) else None
        if not isinstance(function, dict) or not isinstance(arguments, dict | type(None)):
            raise OllamaError(
                400,
                f"json: cannot unmarshal {json_type(arguments)} into Go struct field "
                "ToolCallFunction.messages.tool_calls.function.arguments of type api.ToolCallFunctionArguments",
            )
        # Ollama tool calls carry no id (recent versions may add one): synthesize a stable one.
        call_id = str(call.get("id") or f"ollama_{index}_{position}")
        out.append(ToolCall(call_id, str(function.get("name") or ""), arguments or {}))
    return out


def to_turns(body: JSON, vision: bool = True) -> tuple[list[Turn], list[str]]:
    """Validate an /api/chat request; return the neutral conversation and the offered tool names.

    Tool messages have no call id: each is matched to the latest assistant turn's
    unanswered call with the same ``tool_name`` (or, without one, the next unanswered call).
    """
    tools = [
        str(tool["function"].get("name"))
        for tool in body.get("tools") or []
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict)
    ]
    turns: list[Turn] = []
    pending: list[ToolCall] = []
    for index, message in enumerate(body.get("messages") or []):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("system", "user", "assistant", "tool"):
            raise OllamaError(400, f"invalid role: {role}")
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            kind = "array" if isinstance(content, list) else "object"
            raise OllamaError(
                400, f"json: cannot unmarshal {kind} into Go struct field Message.messages.content of type string"
            )
        images = _check_images(message.get("images"), index)
        images = images if vision else 0
        text = content or ""
        if role == "assistant":
            calls = _assistant_calls(message.get("tool_calls"), index)
            pending = list(calls)
            turns.append(Turn("assistant", text, calls))
        elif role == "tool":
            name = message.get("tool_name") or message.get("name")
            match = next((c for c in pending if c.name == name), pending[0] if pending else None)
            if match is not None:
                pending.remove(match)
            turns.append(Turn("tool", text, tool_call_id=match.id if match else None, images=images))
        else:
            turns.append(Turn(role, text, images=images))
    return turns, tools


# --- reply -> wire ------------------------------------------------------------------


def _wire_calls(reply: Reply, with_ids: bool) -> list[JSON]:
    calls: list[JSON] = []
    for index, call in enumerate(reply.tool_calls):
        wire: JSON = {"function": {"index": index, "name": call.name, "arguments": call.arguments}}
        if with_ids:
            wire = {"id": call.id, **wire}
        calls.append(wire)
    return calls


def _stats(prompt_tokens: int, reply: Reply) -> JSON:
    eval_count = estimate_tokens(len(reply.text) + len(reply.reasoning) + 40 * len(reply.tool_calls))
    return {
        "total_duration": 5_000_000,  # durations are nanoseconds
        "load_duration": 1_000_000,
        "prompt_eval_count": prompt_tokens,
        "prompt_eval_duration": 2_000_000,
        "eval_count": eval_count,
        "eval_duration": 2_000_000,
    }


def chat_json(model: str, reply: Reply, prompt_tokens: int, *, tool_call_ids: bool = False) -> JSON:
    """The single ``/api/chat`` object for ``"stream": false``."""
    message: JSON = {"role": "assistant", "content": reply.text}
    if reply.reasoning:
        message["thinking"] = reply.reasoning
    if reply.tool_calls:
        message["tool_calls"] = _wire_calls(reply, tool_call_ids)
    return {
        "model": model,
        "created_at": _now(),
        "message": message,
        "done": True,
        "done_reason": "stop",
        **_stats(prompt_tokens, reply),
    }


def chat_lines(model: str, reply: Reply, prompt_tokens: int, *, tool_call_ids: bool = False) -> list[bytes]:
    """The NDJSON lines of a streamed ``/api/chat``: thinking, content, tool calls (whole), final ``done`` line."""

    def line(message: JSON) -> bytes:
        data = {"model": model, "created_at": _now(), "message": {"role": "assistant", **message}, "done": False}
        return ndjson_line(data)

    lines = (
        [line({"content": "", "thinking": piece}) for piece in split_text(reply.reasoning)] if reply.reasoning else []
    )
    lines += [line({"content": piece}) for piece in split_text(reply.text)] if reply.text else []
    if reply.tool_calls:
        lines.append(line({"content": "", "tool_calls": _wire_calls(reply, tool_call_ids)}))
    final = {
        "model": model,
        "created_at": _now(),
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": "stop",
        **_stats(prompt_tokens, reply),
    }
    lines.append(ndjson_line(final))
    return lines


# --- the server ---------------------------------------------------------------------


class MockOllamaUpstream(MockUpstreamBase):
    """Real HTTP server on loopback answering like Ollama's native API."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        models: Mapping[str, Mapping[str, Any]] | None = None,
        tool_call_ids: bool = False,
        brain: Brain | None = None,
    ) -> None:
        """``models``: name -> {"context_length": int, "capabilities": [...], "architecture"?: str}
        (a name without a tag means ``:latest``). ``tool_call_ids``: add an ``id`` to each tool call
        as recent Ollama versions do (the documented shape has none).
        """
        super().__init__(host, port)
        source = DEFAULT_MODELS if models is None else models
        self.models: dict[str, dict[str, Any]] = {_full_name(k): dict(v) for k, v in source.items()}
        self.tool_call_ids = tool_call_ids
        self.brain = brain or Brain()

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """Only the model calls (POST /api/chat)."""
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and r.route == "/api/chat"]

    def _route(self, request: RecordedRequest) -> ScriptedResponse:
        route, method = request.route, request.method
        if method in ("GET", "HEAD") and route == "/":
            return ScriptedResponse(body=b"Ollama is running", content_type="text/plain; charset=utf-8")
        if method == "GET" and route == "/api/version":
            return ScriptedResponse(body={"version": "0.12.6"})
        if method == "GET" and route == "/api/tags":
            return ScriptedResponse(body={"models": [self._listing(name) for name in self.models]})
        if method == "GET" and route == "/api/ps":
            return ScriptedResponse(body={"models": []})
        if method == "POST" and route == "/api/show":
            return self._show(request.body)
        if method == "POST" and route == "/api/chat":
            return self._next_response() or self._chat(request)
        return ScriptedResponse(status=404, body=b"404 page not found", content_type="text/plain")

    def _model(self, body: Any) -> tuple[str, dict[str, Any]]:
        name = body.get("model") or body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name:
            raise OllamaError(400, "model is required")
        config = self.models.get(_full_name(name))
        if config is None:
            raise OllamaError(404, f"model '{name}' not found")
        return name, config

    def _details(self, name: str, config: Mapping[str, Any]) -> JSON:
        arch = _architecture(name, config)
        return {
            "parent_model": "",
            "format": "gguf",
            "family": arch,
            "families": [arch],
            "parameter_size": "8.2B",
            "quantization_level": "Q4_K_M",
        }

    def _listing(self, name: str) -> JSON:
        return {
            "name": name,
            "model": name,
            "modified_at": "2026-01-01T00:00:00Z",
            "size": 5_200_000_000,
            "digest": f"{abs(hash(name)):064x}"[:64],
            "details": self._details(name, self.models[name]),
        }

    def _show(self, body: Any) -> ScriptedResponse:
        try:
            name, config = self._model(body)
        except OllamaError as exc:
            return ollama_error(exc.status, exc.message)
        arch = _architecture(name, config)
        model_info = {
            "general.architecture": arch,
            "general.parameter_count": 8_190_735_360,
            f"{arch}.context_length": int(config.get("context_length", 4096)),
            f"{arch}.embedding_length": 4096,
        }
        return ScriptedResponse(
            body={
                "license": "",
                "modelfile": f'# Modelfile generated by "ollama show"\nFROM {name}\n',
                "parameters": "",
                "template": "{{ .Prompt }}",
                "details": self._details(name, config),
                "model_info": model_info,
                "capabilities": list(config.get("capabilities", ["completion"])),
                "modified_at": "2026-01-01T00:00:00Z",
            }
        )

    def _chat(self, request: RecordedRequest) -> ScriptedResponse:
        body = request.body
        try:
            if not isinstance(body, dict):
                raise OllamaError(400, "invalid character in request body")
            name, config = self._model(body)
            capabilities = list(config.get("capabilities", ["completion"]))
            if body.get("tools") and "tools" not in capabilities:
                raise OllamaError(400, f"registry.ollama.ai/library/{_full_name(name)} does not support tools")
            if body.get("think") not in (None, False) and "thinking" not in capabilities:
                raise OllamaError(400, f'"{name}" does not support thinking')
            turns, tools = to_turns(body, vision="vision" in capabilities)
        except OllamaError as exc:
            if exc.status == 400:
                self._reject(request.route, exc.message)
            return ollama_error(exc.status, exc.message)
        stream = body.get("stream", True) is not False  # streaming is the default
        if not body.get("messages"):  # an empty chat only loads the model
            done = {"model": name, "created_at": _now(), "message": {"role": "assistant", "content": ""}}
            loaded = {**done, "done_reason": "load", "done": True}
            if stream:
                return ScriptedResponse(chunks=[ndjson_line(loaded)], content_type=NDJSON)
            return ScriptedResponse(body=loaded)
        fmt = body.get("format")
        reply = self.brain.reply(
            turns,
            tools,
            reasoning=body.get("think") not in (None, False),
            json_output=fmt == "json" or isinstance(fmt, dict),
        )
        prompt_tokens = estimate_tokens(len(request.raw))
        if stream:
            lines = chat_lines(name, reply, prompt_tokens, tool_call_ids=self.tool_call_ids)
            return ScriptedResponse(chunks=lines, content_type=NDJSON)
        return ScriptedResponse(body=chat_json(name, reply, prompt_tokens, tool_call_ids=self.tool_call_ids))
