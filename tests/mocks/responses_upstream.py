"""Scripted mock of the OpenAI Responses API, served over real HTTP on loopback.

Answers ``POST <any prefix>/responses`` (OpenAI ``/v1/responses``, Azure OpenAI
``/openai/responses?api-version=...`` and ``/openai/v1/responses``). Input items
are validated, turned into ``brain.Turn``s, and the reply rendered as a Response
object or the documented SSE event sequence.

Wire format: https://platform.openai.com/docs/api-reference/responses/create
(input items ``message`` / ``function_call`` / ``function_call_output`` /
``reasoning``; flat function tools ``{type, name, parameters}``; ``text.format``),
https://platform.openai.com/docs/api-reference/responses/object (output items,
``usage.input_tokens_details.cached_tokens``),
https://platform.openai.com/docs/api-reference/responses-streaming (named SSE
events with ``sequence_number``; no ``[DONE]``: the stream ends with ``response.completed``),
https://platform.openai.com/docs/guides/reasoning (``reasoning.summary``,
``include: ["reasoning.encrypted_content"]`` for stateless use).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator, Sequence
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
    sse_event,
)
from tests.mocks.brain import Brain, Reply, ToolCall, Turn, parse_arguments
from tests.mocks.openai_upstream import TOOL_NAME, InvalidRequest, openai_error

__all__ = [
    "MockResponsesUpstream",
    "RecordedRequest",
    "ScriptedResponse",
    "openai_error",
    "output_items",
    "response_events",
    "response_json",
    "to_turns",
]


# --- request -> neutral conversation -------------------------------------------------


def _parts(content: Any, where: str) -> tuple[str, int]:
    """Text and image count of a message content / function_call_output output (string or parts)."""
    if content is None or isinstance(content, str):
        return content or "", 0
    if not isinstance(content, list):
        raise InvalidRequest(f"Invalid type for '{where}': expected one of a string or array.", where, "invalid_type")
    texts: list[str] = []
    images = 0
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "summary_text", "refusal"):
            texts.append(str(part.get("refusal" if kind == "refusal" else "text") or ""))
        elif kind == "input_image":
            if not part.get("image_url") and not part.get("file_id"):
                raise InvalidRequest(
                    f"Missing required parameter: '{where}[{index}].image_url'.",
                    f"{where}[{index}].image_url",
                    "missing_required_parameter",
                )
            images += 1
        elif kind == "input_file":
            pass
        else:
            raise InvalidRequest(
                f"Invalid value: '{kind}'. Supported values are: 'input_text', 'input_image', 'input_file', "
                "'output_text' and 'refusal'.",
                f"{where}[{index}].type",
                "invalid_value",
            )
    return "\n".join(texts), images


def _tool_names(tools: Any) -> list[str]:
    names: list[str] = []
    for index, tool in enumerate(tools or []):
        where = f"tools[{index}]"
        if not isinstance(tool, dict) or tool.get("type") != "function":
            continue  # built-in tools (web_search, file_search, ...) are not the mock's business
        if "name" not in tool:
            # Chat Completions nests {"function": {...}}; the Responses API does not.
            raise InvalidRequest(
                f"Missing required parameter: '{where}.name'.", f"{where}.name", "missing_required_parameter"
            )
        name = tool["name"]
        if not isinstance(name, str) or not TOOL_NAME.match(name):
            raise InvalidRequest(
                f"Invalid '{where}.name': string does not match pattern. "
                "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                f"{where}.name",
                "invalid_value",
            )
        if "parameters" in tool and not isinstance(tool["parameters"], dict | type(None)):
            raise InvalidRequest(
                f"Invalid type for '{where}.parameters': expected an object, but got "
                f"{json_type(tool['parameters'], article=True)} instead.",
                f"{where}.parameters",
                "invalid_type",
            )
        names.append(name)
    return names


def _items(body: JSON) -> list[Any]:
    items = body.get("input")
    if isinstance(items, str):
        return [{"type": "message", "role": "user", "content": items}]
    if not isinstance(items, list):
        raise InvalidRequest("Missing required parameter: 'input'.", "input", "missing_required_parameter")
    return items


def to_turns(body: JSON, history: Sequence[Any] = ()) -> tuple[list[Turn], list[str]]:
    """Validate a Responses request (``history``: items of ``previous_response_id``); return turns and tool names."""
    tools = _tool_names(body.get("tools"))
    turns: list[Turn] = []
    if isinstance(body.get("instructions"), str):
        turns.append(Turn("system", body["instructions"]))
    calls: set[str] = set()
    items = [*history, *_items(body)]
    for index, item in enumerate(items):
        where = f"input[{index - len(history)}]"
        if not isinstance(item, dict):
            raise InvalidRequest(f"Invalid type for '{where}': expected an object.", where, "invalid_type")
        kind = item.get("type", "message")  # EasyInputMessage may omit the type
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise InvalidRequest(
                    f"Invalid value: '{role}'. Supported values are: 'assistant', 'system', 'developer', and 'user'.",
                    f"{where}.role",
                    "invalid_value",
                )
            text, images = _parts(item.get("content"), f"{where}.content")
            if role == "user":
                turns.append(Turn("user", text, images=images))
            else:
                turns.append(Turn("assistant" if role == "assistant" else "system", text))
        elif kind == "function_call":
            arguments = item.get("arguments")
            if not isinstance(arguments, str):
                raise InvalidRequest(
                    f"Invalid type for '{where}.arguments': expected a string, but got "
                    f"{json_type(arguments, article=True)} instead.",
                    f"{where}.arguments",
                    "invalid_type",
                )
            if not item.get("call_id"):
                raise InvalidRequest(
                    f"Missing required parameter: '{where}.call_id'.", f"{where}.call_id", "missing_required_parameter"
                )
            call = ToolCall(str(item["call_id"]), str(item.get("name") or ""), parse_arguments(arguments))
            calls.add(call.id)
            # Consecutive calls of one assistant turn (parallel tool calls) stay in one turn.
            if turns and turns[-1].role == "assistant" and turns[-1].tool_calls:
                turns[-1].tool_calls.append(call)
            else:
                turns.append(Turn("assistant", tool_calls=[call]))
        elif kind == "function_call_output":
            call_id = item.get("call_id")
            if call_id not in calls:
                raise InvalidRequest(f"No tool call found for function call output with call_id {call_id}.", "input")
            text, images = _parts(item.get("output"), f"{where}.output")
            turns.append(Turn("tool", text, tool_call_id=str(call_id), images=images))
        elif kind in ("reasoning", "item_reference"):
            continue  # opaque to the mock (summaries / encrypted_content are echoed back by stateless clients)
        else:
            raise InvalidRequest(f"Invalid value: '{kind}'.", f"{where}.type", "invalid_value")
    fmt = (body.get("text") or {}).get("format") if isinstance(body.get("text"), dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and not fmt.get("name"):
        raise InvalidRequest(
            "Missing required parameter: 'text.format.name'.", "text.format.name", "missing_required_parameter"
        )
    return turns, tools


# --- reply -> wire ------------------------------------------------------------------


def output_items(reply: Reply, *, encrypted_reasoning: bool = False) -> list[JSON]:
    """The Response ``output`` array for a reply: [reasoning], message | function_call..."""
    items: list[JSON] = []
    if reply.reasoning:
        reasoning: JSON = {
            "type": "reasoning",
            "id": new_id("rs"),
            "summary": [{"type": "summary_text", "text": reply.reasoning}],
        }
        if encrypted_reasoning:
            reasoning["encrypted_content"] = base64.b64encode(reply.reasoning.encode()).decode()
        items.append(reasoning)
    if reply.text:
        items.append(
            {
                "type": "message",
                "id": new_id("msg"),
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": reply.text, "annotations": [], "logprobs": []}],
            }
        )
    for call in reply.tool_calls:
        items.append(
            {
                "type": "function_call",
                "id": "fc_" + call.id.removeprefix("call_"),
                "call_id": call.id,
                "name": call.name,
                "arguments": json.dumps(call.arguments),
                "status": "completed",
            }
        )
    return items


def _usage(input_tokens: int, output: list[JSON], cached: int) -> JSON:
    reasoning = sum(estimate_tokens(len(json.dumps(i["summary"]))) for i in output if i["type"] == "reasoning")
    output_tokens = estimate_tokens(len(json.dumps(output)))
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": min(cached, input_tokens)},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": min(reasoning, output_tokens)},
        "total_tokens": input_tokens + output_tokens,
    }


def response_json(body: JSON, output: list[JSON], input_tokens: int, cached_tokens: int = 0) -> JSON:
    """A complete Response object (``status: completed``)."""
    return {
        "id": new_id("resp"),
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": str(body.get("model") or "gpt-mock"),
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": _usage(input_tokens, output, cached_tokens),
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def _item_events(index: int, item: JSON) -> Iterator[tuple[str, JSON]]:
    """Events for one output item, from ``output_item.added`` to ``output_item.done``."""
    ids = {"item_id": item["id"], "output_index": index}
    if item["type"] == "reasoning":
        yield "response.output_item.added", {"output_index": index, "item": {**item, "summary": []}}
        for summary_index, part in enumerate(item["summary"]):
            at = {**ids, "summary_index": summary_index}
            yield "response.reasoning_summary_part.added", {**at, "part": {"type": "summary_text", "text": ""}}
            for piece in split_text(part["text"]):
                yield "response.reasoning_summary_text.delta", {**at, "delta": piece}
            yield "response.reasoning_summary_text.done", {**at, "text": part["text"]}
            yield "response.reasoning_summary_part.done", {**at, "part": part}
    elif item["type"] == "message":
        yield (
            "response.output_item.added",
            {"output_index": index, "item": {**item, "status": "in_progress", "content": []}},
        )
        part = item["content"][0]
        at = {**ids, "content_index": 0}
        yield "response.content_part.added", {**at, "part": {**part, "text": ""}}
        for piece in split_text(part["text"]):
            yield "response.output_text.delta", {**at, "delta": piece, "logprobs": []}
        yield "response.output_text.done", {**at, "text": part["text"], "logprobs": []}
        yield "response.content_part.done", {**at, "part": part}
    else:  # function_call
        yield (
            "response.output_item.added",
            {
                "output_index": index,
                "item": {**item, "arguments": "", "status": "in_progress"},
            },
        )
        for piece in split_text(item["arguments"], 4):
            yield "response.function_call_arguments.delta", {**ids, "delta": piece}
        yield "response.function_call_arguments.done", {**ids, "name": item["name"], "arguments": item["arguments"]}
    yield "response.output_item.done", {"output_index": index, "item": item}


def response_events(response: JSON) -> list[bytes]:
    """The documented SSE sequence for a completed Response (``event:`` + ``data:`` frames)."""
    in_progress = {**response, "status": "in_progress", "output": [], "usage": None}
    events: list[tuple[str, JSON]] = [
        ("response.created", {"response": in_progress}),
        ("response.in_progress", {"response": in_progress}),
    ]
    for index, item in enumerate(response["output"]):
        events.extend(_item_events(index, item))
    events.append(("response.completed", {"response": response}))
    return [
        sse_event(name, {"type": name, "sequence_number": number, **data}) for number, (name, data) in enumerate(events)
    ]


# --- the server ---------------------------------------------------------------------


def _wants_reasoning(body: JSON) -> bool:
    reasoning = body.get("reasoning")
    if not isinstance(reasoning, dict):
        return False
    return reasoning.get("effort") not in ("none", "minimal") or bool(reasoning.get("summary"))


def _wants_json(body: JSON) -> bool:
    text = body.get("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    return isinstance(fmt, dict) and fmt.get("type") in ("json_schema", "json_object")


class MockResponsesUpstream(MockUpstreamBase):
    """Real HTTP server on loopback answering like the OpenAI Responses API."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str | None = None,
        cached_tokens: int = 0,
        brain: Brain | None = None,
    ) -> None:
        """``api_key`` set: require ``Authorization: Bearer <key>`` or ``api-key: <key>`` (Azure), else 401.
        ``cached_tokens``: reported as ``usage.input_tokens_details.cached_tokens``.
        Responses stored unless the request says ``store: false``; ``previous_response_id`` replays them.
        """
        super().__init__(host, port)
        self.api_key = api_key
        self.cached_tokens = cached_tokens
        self.brain = brain or Brain()
        self.stored: dict[str, list[Any]] = {}  # response id -> its input items + output items

    @property
    def responses_requests(self) -> list[RecordedRequest]:
        """Only the model calls (POST .../responses)."""
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and r.route.endswith("/responses")]

    def _route(self, request: RecordedRequest) -> ScriptedResponse:
        route = request.route
        if request.method in ("GET", "HEAD") and route == "/":
            return ScriptedResponse(body={"status": "ok"})
        if self.api_key is not None and not _authorized(request.headers, self.api_key):
            return openai_error(401, "Incorrect API key provided: mock.", code="invalid_api_key")
        if request.method == "POST" and route.endswith("/responses"):
            return self._next_response() or self._answer(request)
        return openai_error(404, f"Invalid URL ({request.method} {route})", code="not_found")

    def _answer(self, request: RecordedRequest) -> ScriptedResponse:
        body = request.body
        if not isinstance(body, dict):
            self._reject(request.route, "body is not a JSON object")
            return openai_error(400, "We could not parse the JSON body of your request.")
        previous = body.get("previous_response_id")
        if previous is not None and previous not in self.stored:
            message = f"Previous response with id '{previous}' not found."
            self._reject(request.route, message)
            return openai_error(400, message, param="previous_response_id", code="previous_response_not_found")
        history = self.stored.get(previous, []) if isinstance(previous, str) else []
        try:
            turns, tools = to_turns(body, history)
        except InvalidRequest as exc:
            self._reject(request.route, exc.message)
            return openai_error(400, exc.message, param=exc.param, code=exc.code)
        reply = self.brain.reply(turns, tools, reasoning=_wants_reasoning(body), json_output=_wants_json(body))
        include = body.get("include")
        include = include if isinstance(include, list) else []
        output = output_items(reply, encrypted_reasoning="reasoning.encrypted_content" in include)
        response = response_json(body, output, estimate_tokens(len(request.raw)), self.cached_tokens)
        if body.get("store", True) is not False:
            with self._lock:
                self.stored[response["id"]] = [*history, *_items(body), *output]
        if body.get("stream") is True:
            return ScriptedResponse(chunks=response_events(response))
        return ScriptedResponse(body=response)


def _authorized(headers: dict[str, str], key: str) -> bool:
    return headers.get("authorization") == f"Bearer {key}" or headers.get("api-key") == key
