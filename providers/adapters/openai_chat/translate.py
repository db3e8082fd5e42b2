"""Anthropic Messages request -> OpenAI chat completions request (pure).

Mapping (https://docs.anthropic.com/en/api/messages -> https://platform.openai.com/docs/api-reference/chat/create):
- ``system`` (string or blocks) -> a leading ``system`` message; ``cache_control`` has no equivalent and is dropped.
- A ``role:"system"`` entry inside ``messages`` (Claude Code's mid-conversation-system beta) -> a ``system`` message
  in place, or folded into the leading one with the provider option ``system_messages: "fold"`` (for chat templates
  that accept a system message only first).
- user text/image blocks -> content parts (``image_url`` with a data URL for base64); PDF documents -> ``file``
  parts when the option ``documents`` is true, else a 400 naming the block.
- ``tool_result`` blocks -> ``role:"tool"`` messages, in order, before the user's other content. Chat backends take
  only text in tool messages, so a tool_result's images follow in a user message that names the tool call.
- assistant text + ``tool_use`` -> one assistant message with ``content`` and ``tool_calls`` (ids kept, so they
  round-trip); thinking -> ``reasoning_content`` when the option ``reasoning_echo`` is on (DeepSeek requires it),
  else dropped, as chat completions has no place for prior reasoning.
- tools -> functions (schema whole, or cleaned with ``strict_schema``); names made valid reversibly;
  ``tool_choice`` auto/any/tool/none -> auto/required/function/none; ``disable_parallel_tool_use`` ->
  ``parallel_tool_calls: false``.
- thinking / ``output_config.effort`` -> ``reasoning_effort`` (only for providers marked supports_thinking);
  ``output_config.format`` json_schema -> ``response_format``.
- ``max_tokens`` clamped to the provider's output limit; ``stop_sequences`` -> ``stop``; ``temperature``, ``top_p``
  kept; ``top_k`` only with the option ``top_k`` (vLLM, OpenRouter); ``metadata.user_id`` -> hashed ``user``.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.wire.body import SharedTools
from gateway.wire.errors import InvalidRequestError
from providers.adapters.base import InboundContext, UpstreamRequest
from providers.adapters.common.auth import auth_headers, extra_headers
from providers.adapters.common.content import (
    blocks_of,
    effort_of,
    image_url,
    text_of,
    tool_choice_openai,
    tool_result_split,
    tools_declared,
    tools_revealed,
    user_hash,
)
from providers.adapters.common.schema import schema_for_tool
from providers.adapters.common.toolnames import toolname_encode
from providers.adapters.openai_chat.wire import chat_url
from providers.routing import ProviderConfig, Route

Json = dict[str, Any]


def _user_parts(blocks: list[tuple[int, Json]], provider: ProviderConfig, where: str) -> list[Json]:
    parts: list[Json] = []
    for index, block in blocks:
        kind = block.get("type")
        here = f"{where}.content.{index}"
        if kind == "text":
            parts.append({"type": "text", "text": str(block.get("text", ""))})
        elif kind == "image":
            if not provider.supports_images:
                raise InvalidRequestError(f"{here}: provider {provider.name!r} does not accept images")
            parts.append({"type": "image_url", "image_url": {"url": image_url(block, here)}})
        elif kind == "document":
            parts.append(_document_part(block, provider, here))
        elif kind in ("thinking", "redacted_thinking"):
            continue
        else:
            raise InvalidRequestError(f"{here}: block type {kind!r} cannot be sent to provider {provider.name!r}")
    return parts


def _document_part(block: Json, provider: ProviderConfig, where: str) -> Json:
    source = block.get("source") or {}
    if source.get("type") == "text":
        return {"type": "text", "text": str(source.get("data", ""))}
    if provider.options.get("documents") and source.get("type") == "base64":
        # https://platform.openai.com/docs/guides/pdf-files: a file part with a data URL.
        media = source.get("media_type", "application/pdf")
        return {
            "type": "file",
            "file": {
                "filename": block.get("title") or "document.pdf",
                "file_data": f"data:{media};base64,{source.get('data', '')}",
            },
        }
    raise InvalidRequestError(
        f"{where}: provider {provider.name!r} does not accept documents (set its option documents=true if it does)"
    )


def _content(parts: list[Json]) -> str | list[Json]:
    """A plain string when all parts are text: the most widely accepted form (llama.cpp, older vLLM)."""
    if all(p.get("type") == "text" for p in parts):
        return "\n\n".join(str(p["text"]) for p in parts)
    return parts


def _user_messages(message: Json, provider: ProviderConfig, where: str) -> list[Json]:
    out: list[Json] = []
    trailing_images: list[Json] = []
    others: list[tuple[int, Json]] = []  # with their original positions, for error messages
    for index, block in enumerate(blocks_of(message.get("content"))):
        if block.get("type") == "tool_result":
            here = f"{where}.content.{index}"
            text, images = tool_result_split(block, here)
            out.append({"role": "tool", "tool_call_id": str(block.get("tool_use_id", "")), "content": text})
            if images:
                if not provider.supports_images:
                    raise InvalidRequestError(f"{here}: provider {provider.name!r} does not accept images")
                trailing_images.append(
                    {"type": "text", "text": f"[images returned by tool call {block.get('tool_use_id', '')}]"}
                )
                trailing_images += [{"type": "image_url", "image_url": {"url": image_url(i, here)}} for i in images]
        else:
            others.append((index, block))
    parts = trailing_images + _user_parts(others, provider, where)
    if parts:
        out.append({"role": "user", "content": _content(parts)})
    return out


def _assistant_message(message: Json, provider: ProviderConfig, where: str) -> Json:
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[Json] = []
    for index, block in enumerate(blocks_of(message.get("content"))):
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            calls.append(
                {
                    "id": str(block.get("id", "")),
                    "type": "function",
                    "function": {
                        "name": toolname_encode(str(block.get("name", ""))),
                        "arguments": orjson.dumps(block.get("input") or {}).decode(),
                    },
                }
            )
        elif kind == "thinking":
            reasoning.append(str(block.get("thinking", "")))
        elif kind == "redacted_thinking":
            continue  # opaque to any backend but the one that made it
        else:
            raise InvalidRequestError(
                f"{where}.content.{index}: block type {kind!r} cannot be sent to provider {provider.name!r}"
            )
    out: Json = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        out["tool_calls"] = calls
    if reasoning and provider.options.get("reasoning_echo"):
        out["reasoning_content"] = "".join(reasoning)
    return out


def messages_to_chat(body: Json, provider: ProviderConfig) -> list[Json]:
    fold = provider.options.get("system_messages") == "fold"
    system_texts = [text_of(body["system"])] if body.get("system") else []
    out: list[Json] = []
    for position, message in enumerate(body.get("messages") or []):
        where = f"messages.{position}"
        role = message.get("role")
        if role == "system":
            text = text_of(message.get("content"))
            if fold:
                system_texts.append(text)
            else:
                out.append({"role": "system", "content": text})
        elif role == "user":
            out += _user_messages(message, provider, where)
        else:
            out.append(_assistant_message(message, provider, where))
    if system_texts:
        out.insert(0, {"role": "system", "content": "\n\n".join(t for t in system_texts if t)})
    return out


def tools_to_chat(body: Json, provider: ProviderConfig) -> list[Json] | orjson.Fragment:
    """The declared tools as chat ``functions``. Of a request's shared tools (gateway/wire/body.py) the translation
    of their declared part is made and serialised once (an ``orjson.Fragment``, spliced into the upstream body as
    it is); tools a ToolSearch result revealed are translated per request and appended."""
    strict = bool(provider.options.get("strict_schema"))
    tools = body.get("tools")
    declared = tools_declared(tools)
    revealed = tools_revealed(declared, body.get("messages") or [])
    if not isinstance(tools, SharedTools):
        return _functions(declared + revealed, strict)
    base = tools.derive(("openai_chat.tools_to_chat", strict), lambda: orjson.dumps(_functions(declared, strict)))
    if revealed:
        extra = orjson.dumps(_functions(revealed, strict))
        return orjson.Fragment(base[:-1] + b"," + extra[1:] if declared else extra)
    return orjson.Fragment(base) if declared else []


def _functions(tools: list[Json], strict: bool) -> list[Json]:
    out = []
    for tool in tools:
        if tool.get("type") not in (None, "custom") and tool.get("input_schema") is None:
            raise InvalidRequestError(
                f"tools: server tool {tool.get('type')!r} ({tool.get('name')}) runs only on Anthropic's API"
            )
        function: Json = {
            "name": toolname_encode(str(tool.get("name", ""))),
            "parameters": schema_for_tool(tool.get("input_schema"), strict=strict),
        }
        if tool.get("description"):
            function["description"] = tool["description"]
        out.append({"type": "function", "function": function})
    return out


def tool_choice_to_chat(choice: Any) -> tuple[Any, bool | None]:
    """(tool_choice, parallel_tool_calls) from Anthropic's tool_choice."""
    return tool_choice_openai(choice, named=lambda name: {"type": "function", "function": {"name": name}})


def build_body(route: Route, body: Json) -> Json:
    provider = route.provider
    # A streaming client is streamed from upstream; a non-streaming one is not: the server sends one ChatCompletion
    # (usage always included, https://platform.openai.com/docs/api-reference/chat/object), which stream.py's
    # ChatJsonDecoder replays as events. That saves decoding an SSE chunk per token only to fold them again.
    streaming = bool(body.get("stream"))
    out: Json = {"model": route.upstream_model, "messages": messages_to_chat(body, provider), "stream": streaming}
    if streaming:
        out["stream_options"] = {"include_usage": True}  # else the stream carries no usage (API reference)
    max_tokens = int(body["max_tokens"])
    if provider.max_output_tokens:
        max_tokens = min(max_tokens, provider.max_output_tokens)
    out[str(provider.options.get("max_tokens_field") or "max_tokens")] = max_tokens
    tools = tools_to_chat(body, provider)
    if tools:
        if not provider.supports_tools:
            raise InvalidRequestError(f"tools: provider {provider.name!r} does not support tools")
        out["tools"] = tools
        choice, parallel = tool_choice_to_chat(body.get("tool_choice"))
        if choice is not None:
            out["tool_choice"] = choice
        if parallel is not None:
            out["parallel_tool_calls"] = parallel
    for source, target in (("temperature", "temperature"), ("top_p", "top_p"), ("stop_sequences", "stop")):
        if body.get(source) is not None:
            out[target] = body[source]
    if body.get("top_k") is not None and provider.options.get("top_k"):
        out["top_k"] = body["top_k"]
    effort = effort_of(body)
    if effort and provider.supports_thinking:
        out["reasoning_effort"] = effort
    output_format = (body.get("output_config") or {}).get("format")
    if isinstance(output_format, dict) and output_format.get("type") == "json_schema":
        out["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": output_format.get("schema") or {}},
        }
    user, session = user_hash(body)
    if user:
        out["user"] = user
    if session and provider.options.get("prompt_cache_key"):
        out["prompt_cache_key"] = session
    return out


def headers_for(
    provider: ProviderConfig, inbound: InboundContext, *, streaming: bool = True
) -> tuple[tuple[str, str], ...]:
    accept = "text/event-stream" if streaming else "application/json"
    headers = [("content-type", "application/json"), ("accept", accept)]
    headers += auth_headers(provider) + extra_headers(provider)
    if inbound.request_id:
        headers.append(("x-request-id", inbound.request_id))
    return tuple(headers)


def build_request(route: Route, body: Json, inbound: InboundContext, url: str | None = None) -> UpstreamRequest:
    provider = route.provider
    return UpstreamRequest(
        method="POST",
        url=url or chat_url(provider.base_url),
        headers=headers_for(provider, inbound, streaming=bool(body.get("stream"))),
        body=orjson.dumps(build_body(route, body)),
        connect_timeout=provider.connect_timeout,
        read_timeout=provider.read_timeout,
    )
