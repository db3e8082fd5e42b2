"""Scripted mock of the OpenAI Chat Completions API, served over real HTTP on loopback.

Answers ``POST <any prefix>/chat/completions`` (OpenAI ``/v1/chat/completions``,
Azure OpenAI ``/openai/deployments/<d>/chat/completions?api-version=...``, Azure AI
Foundry ``/models/chat/completions?api-version=...``) and Databricks
``/serving-endpoints/<name>/invocations``. The request is validated like a
strict OpenAI server would, turned into ``brain.Turn``s, and the brain's reply
rendered as a ``chat.completion`` object or a ``chat.completion.chunk`` SSE stream.

Wire format: https://platform.openai.com/docs/api-reference/chat/create (request,
response), https://platform.openai.com/docs/api-reference/chat-streaming (chunks:
data-only SSE, ``delta.tool_calls[].index`` with ``id``/``function.name`` in the
first fragment, ``finish_reason`` on the last choice chunk, an extra chunk with
``choices: []`` and ``usage`` when ``stream_options.include_usage``, then
``data: [DONE]``), https://platform.openai.com/docs/guides/error-codes (error shape).
``reasoning_content`` is not an OpenAI field: it is the DeepSeek / vLLM / Azure
AI Foundry convention for reasoning text, used here when ``reasoning_effort`` is set.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tests.mocks.base import (
    JSON,
    MockUpstreamBase,
    RecordedRequest,
    ScriptedResponse,
    estimate_tokens,
    json_type,
    new_id,
    split_text,
    sse_data,
)
from tests.mocks.brain import Brain, Reply, ToolCall, Turn, parse_arguments

__all__ = [
    "InvalidRequest",
    "MockOpenAIUpstream",
    "RecordedRequest",
    "ScriptedResponse",
    "chat_completion_chunks",
    "chat_completion_json",
    "openai_error",
    "to_turns",
]

# https://platform.openai.com/docs/api-reference/chat/create#chat-create-tools (function.name)
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_DATABRICKS = re.compile(r"/serving-endpoints/[^/]+/invocations$")


@dataclass
class InvalidRequest(Exception):
    """What a strict OpenAI server answers with 400 (``param``/``code`` as in its error object)."""

    message: str
    param: str | None = None
    code: str | None = None


def openai_error(
    status: int,
    message: str,
    error_type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> ScriptedResponse:
    """An OpenAI error body: ``{"error": {"message", "type", "param", "code"}}``."""
    headers = {"retry-after": "7"} if status == 429 else {}
    body = {"error": {"message": message, "type": error_type, "param": param, "code": code}}
    return ScriptedResponse(status=status, headers=headers, body=body)


# --- request -> neutral conversation -------------------------------------------------


def _content(content: Any, where: str, role: str) -> tuple[str, int]:
    """Text and image count of a message's ``content`` (a string or an array of parts)."""
    if content is None or isinstance(content, str):
        return content or "", 0
    if not isinstance(content, list):
        raise InvalidRequest(f"Invalid type for '{where}': expected one of a string or array.", where, "invalid_type")
    texts: list[str] = []
    images = 0
    for index, part in enumerate(content):
        part_where = f"{where}[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("text", "refusal"):
            texts.append(str(part.get(kind) or ""))
        elif kind == "image_url":
            if role != "user":
                # Chat Completions accepts image parts only from the user.
                raise InvalidRequest(
                    f"Invalid '{where.rsplit('.', 1)[0]}'. Image URLs are only allowed for messages with role "
                    f"'user', but this message with role '{role}' contains an image URL.",
                    where,
                    "invalid_value",
                )
            url = (part.get("image_url") or {}).get("url") if isinstance(part.get("image_url"), dict) else None
            if not isinstance(url, str) or not re.match(r"^(https?://|data:image/[\w.+-]+;base64,)", url):
                raise InvalidRequest(
                    f"Invalid '{part_where}.image_url.url'. Expected a base64-encoded data URL with an image "
                    "MIME type (e.g. 'data:image/png;base64,...') or an http(s) URL.",
                    f"{part_where}.image_url.url",
                    "invalid_value",
                )
            images += 1
        else:
            raise InvalidRequest(f"Invalid value: '{kind}'. Supported values are: 'text' and 'image_url'.", part_where)
    return "\n".join(texts), images


def _tool_calls(calls: Any, where: str) -> list[ToolCall]:
    out: list[ToolCall] = []
    for index, call in enumerate(calls or []):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not call.get("id"):
            raise InvalidRequest(
                f"Missing required parameter: '{where}[{index}].id'.",
                f"{where}[{index}]",
                "missing_required_parameter",
            )
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            raise InvalidRequest(
                f"Invalid type for '{where}[{index}].function.arguments': expected a string, "
                f"but got {json_type(arguments, article=True)} instead.",
                f"{where}[{index}].function.arguments",
                "invalid_type",
            )
        out.append(ToolCall(str(call["id"]), str(function.get("name") or ""), parse_arguments(arguments)))
    return out


def _tool_names(tools: Any) -> list[str]:
    names: list[str] = []
    for index, tool in enumerate(tools or []):
        where = f"tools[{index}].function"
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or "name" not in function:
            raise InvalidRequest(
                f"Missing required parameter: '{where}.name'.", f"{where}.name", "missing_required_parameter"
            )
        name = function["name"]
        if not isinstance(name, str) or not TOOL_NAME.match(name):
            raise InvalidRequest(
                f"Invalid '{where}.name': string does not match pattern. "
                "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                f"{where}.name",
                "invalid_value",
            )
        if "parameters" in function and not isinstance(function["parameters"], dict):
            raise InvalidRequest(
                f"Invalid type for '{where}.parameters': expected an object, "
                f"but got {json_type(function['parameters'], article=True)} instead.",
                f"{where}.parameters",
                "invalid_type",
            )
        names.append(name)
    return names


def _check_tool_pairing(messages: list[Any]) -> None:
    """Tool messages must answer the assistant ``tool_calls`` right before them, and all of them."""
    pending: dict[str, int] = {}  # tool_call_id -> index of the assistant message that asked
    for index, message in enumerate(messages):
        role = message.get("role")
        if role == "function":
            continue
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in pending:
                raise InvalidRequest(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
                    "with 'tool_calls'.",
                    f"messages.[{index}].role",
                )
            del pending[call_id]
            continue
        if pending:
            raise InvalidRequest(
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(pending)}",
                f"messages.[{index}].role",
            )
        if role == "assistant":
            pending = {str(call.get("id")): index for call in message.get("tool_calls") or [] if isinstance(call, dict)}
    if pending:
        raise InvalidRequest(
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
            f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(pending)}",
            f"messages.[{len(messages)}].role",
        )


def to_turns(body: JSON) -> tuple[list[Turn], list[str]]:
    """Validate a Chat Completions request; return the neutral conversation and the offered tool names."""
    # No "model" check: Azure deployments and Databricks endpoints name the model in the URL.
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("Invalid 'messages': empty array. Expected an array with minimum length 1.", "messages")
    tools = _tool_names(body.get("tools"))
    turns: list[Turn] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("system", "developer", "user", "assistant", "tool", "function"):
            raise InvalidRequest(
                f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', 'tool', "
                "'function', and 'developer'.",
                f"{where}.role",
                "invalid_value",
            )
        if role == "function":
            continue  # deprecated function-calling results: accepted, ignored by the brain
        text, images = _content(message.get("content"), f"{where}.content", role)
        if role in ("system", "developer"):
            turns.append(Turn("system", text))
        elif role == "user":
            turns.append(Turn("user", text, images=images))
        elif role == "assistant":
            turns.append(Turn("assistant", text, _tool_calls(message.get("tool_calls"), f"{where}.tool_calls")))
        else:
            turns.append(Turn("tool", text, tool_call_id=str(message.get("tool_call_id")), images=images))
    _check_tool_pairing(messages)
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        schema = response_format.get("json_schema")
        if not isinstance(schema, dict) or not schema.get("name"):
            raise InvalidRequest(
                "Missing required parameter: 'response_format.json_schema.name'.",
                "response_format.json_schema.name",
                "missing_required_parameter",
            )
    return turns, tools


# --- reply -> wire ------------------------------------------------------------------


def _completion_id() -> str:
    return "chatcmpl-" + new_id("mock").removeprefix("mock_")


def _wire_calls(calls: Sequence[ToolCall]) -> list[JSON]:
    return [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
        for c in calls
    ]


def _usage(prompt_tokens: int, completion_tokens: int, cached: int, reasoning: int) -> JSON:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": min(cached, prompt_tokens), "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": reasoning, "audio_tokens": 0},
    }


def _token_counts(reply: Reply) -> tuple[int, int]:
    size = len(reply.text) + len(json.dumps(_wire_calls(reply.tool_calls))) if reply.tool_calls else len(reply.text)
    reasoning = estimate_tokens(len(reply.reasoning)) if reply.reasoning else 0
    return estimate_tokens(size) + reasoning, reasoning


def chat_completion_json(model: str, reply: Reply, prompt_tokens: int, cached_tokens: int = 0) -> JSON:
    """A complete non-streaming ``chat.completion`` object."""
    message: JSON = {"role": "assistant", "content": reply.text or None, "refusal": None}
    if reply.tool_calls:
        message["tool_calls"] = _wire_calls(reply.tool_calls)
    if reply.reasoning:
        message["reasoning_content"] = reply.reasoning
    completion, reasoning = _token_counts(reply)
    return {
        "id": _completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_mock",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if reply.tool_calls else "stop",
            }
        ],
        "usage": _usage(prompt_tokens, completion, cached_tokens, reasoning),
    }


def chat_completion_chunks(
    model: str,
    reply: Reply,
    prompt_tokens: int,
    *,
    include_usage: bool = False,
    cached_tokens: int = 0,
) -> list[bytes]:
    """The documented SSE sequence of ``chat.completion.chunk`` frames, ending with ``data: [DONE]``."""
    base: JSON = {
        "id": _completion_id(),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_mock",
    }

    def chunk(delta: JSON, finish_reason: str | None = None) -> bytes:
        data: JSON = {
            **base,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if include_usage:
            data["usage"] = None  # documented: every chunk but the last carries usage: null
        return sse_data(data)

    frames = [chunk({"role": "assistant", "content": "", "refusal": None})]
    frames += [chunk({"reasoning_content": piece}) for piece in split_text(reply.reasoning)] if reply.reasoning else []
    frames += [chunk({"content": piece}) for piece in split_text(reply.text)] if reply.text else []
    for index, call in enumerate(reply.tool_calls):
        head = {"index": index, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
        frames.append(chunk({"tool_calls": [head]}))
        for piece in split_text(json.dumps(call.arguments), 4):
            frames.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
    frames.append(chunk({}, "tool_calls" if reply.tool_calls else "stop"))
    if include_usage:
        completion, reasoning = _token_counts(reply)
        usage = _usage(prompt_tokens, completion, cached_tokens, reasoning)
        frames.append(sse_data({**base, "choices": [], "usage": usage}))
    frames.append(sse_data("[DONE]"))
    return frames


# --- the server ---------------------------------------------------------------------


def _wants_reasoning(body: JSON) -> bool:
    effort = body.get("reasoning_effort")
    return isinstance(effort, str) and effort not in ("", "none")


def _wants_json(body: JSON) -> bool:
    response_format = body.get("response_format")
    return isinstance(response_format, dict) and response_format.get("type") in ("json_schema", "json_object")


class MockOpenAIUpstream(MockUpstreamBase):
    """Real HTTP server on loopback answering like the OpenAI Chat Completions API."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str | None = None,
        models: Sequence[str] = ("gpt-mock",),
        cached_tokens: int = 0,
        brain: Brain | None = None,
    ) -> None:
        """``api_key`` set: require ``Authorization: Bearer <key>`` or ``api-key: <key>`` (Azure), else 401.
        ``models``: what ``GET .../models`` lists.
        ``cached_tokens``: reported as ``usage.prompt_tokens_details.cached_tokens``.
        """
        super().__init__(host, port)
        self.api_key = api_key
        self.models = list(models)
        self.cached_tokens = cached_tokens
        self.brain = brain or Brain()

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """Only the model calls (POST .../chat/completions or Databricks .../invocations)."""
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and _is_chat_route(r.route)]

    def _route(self, request: RecordedRequest) -> ScriptedResponse:
        route = request.route
        if request.method in ("GET", "HEAD") and route == "/":
            return ScriptedResponse(body={"status": "ok"})
        if self.api_key is not None and not self._authorized(request.headers):
            return openai_error(
                401, "Incorrect API key provided: mock.", "invalid_request_error", code="invalid_api_key"
            )
        if request.method == "GET" and route.endswith("/models"):
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "mock"} for m in self.models]
            return ScriptedResponse(body={"object": "list", "data": data})
        if request.method == "POST" and _is_chat_route(route):
            return self._next_response() or self._answer(request)
        return openai_error(404, f"Invalid URL ({request.method} {route})", code="not_found")

    def _authorized(self, headers: dict[str, str]) -> bool:
        return headers.get("authorization") == f"Bearer {self.api_key}" or headers.get("api-key") == self.api_key

    def _answer(self, request: RecordedRequest) -> ScriptedResponse:
        body = request.body
        if not isinstance(body, dict):
            self._reject(request.route, "body is not a JSON object")
            return openai_error(400, "We could not parse the JSON body of your request.")
        try:
            turns, tools = to_turns(body)
        except InvalidRequest as exc:
            self._reject(request.route, exc.message)
            return openai_error(400, exc.message, param=exc.param, code=exc.code)
        reply = self.brain.reply(turns, tools, reasoning=_wants_reasoning(body), json_output=_wants_json(body))
        model = str(body.get("model") or "gpt-mock")
        prompt_tokens = estimate_tokens(len(request.raw))
        if body.get("stream") is True:
            options = body.get("stream_options")
            include_usage = isinstance(options, dict) and options.get("include_usage") is True
            chunks = chat_completion_chunks(
                model, reply, prompt_tokens, include_usage=include_usage, cached_tokens=self.cached_tokens
            )
            return ScriptedResponse(chunks=chunks)
        return ScriptedResponse(body=chat_completion_json(model, reply, prompt_tokens, self.cached_tokens))


def _is_chat_route(route: str) -> bool:
    return route.endswith("/chat/completions") or bool(_DATABRICKS.search(route))
