"""Anthropic Messages request -> Ollama ``POST /api/chat`` request (pure).

Mapping (https://docs.anthropic.com/en/api/messages -> https://github.com/ollama/ollama/blob/main/docs/api.md
"Generate a chat completion"; tool messages per docs/capabilities/tool-calling.mdx):
- ``system`` (string or blocks) -> a leading ``system`` message; a ``role:"system"`` entry inside ``messages``
  (Claude Code's mid-conversation-system beta) -> a ``system`` message in place. ``cache_control`` has no
  equivalent (Ollama reuses its KV cache for a matching prefix by itself) and is dropped.
- user text -> ``content``; base64 images -> the message's ``images`` list (Ollama takes raw base64 only, so URL
  images are a 400 naming the block, as is any image for a provider marked text-only).
- ``tool_result`` -> ``role:"tool"`` messages in order, with ``tool_name`` = the name of the ``tool_use`` it answers
  (Ollama has no call ids; the name is how its chat templates attribute a result). A tool message carries text
  only, so a tool_result's images follow in a user message with ``images``.
- assistant text + ``tool_use`` -> one assistant message with ``content`` and ``tool_calls`` whose ``arguments``
  are objects, not JSON strings; thinking blocks -> the message's ``thinking`` field.
- tools -> ``{"type": "function", "function": {...}}`` (schema whole, or cleaned with ``strict_schema``); deferred
  tools per ``tools_for_backend``. Names are sent as they are: Ollama puts no limit on function names.
  Ollama has no ``tool_choice``: "none" omits the tools, "tool" offers only the named tool (the nearest Ollama
  gets to forcing it), "auto"/"any" offer all tools and the model decides (it may answer in text despite "any").
- thinking: ``think`` is sent only to models marked supports_thinking: ``true`` (or the effort "low"/"medium"/"high"
  with the option ``think_levels``, e.g. gpt-oss; docs/capabilities/thinking.mdx) when thinking is asked for,
  ``false`` when it is not (Ollama's default would be to think).
- ``max_tokens`` clamped to the provider's output limit -> ``options.num_predict``; ``options.num_ctx`` = the
  provider's context window (option ``num_ctx`` overrides), because Ollama's default context of a few thousand
  tokens silently truncates a Claude Code prompt; ``stop_sequences``/``temperature``/``top_p``/``top_k`` ->
  ``options``; option ``keep_alive`` -> ``keep_alive``; ``output_config.format`` json_schema -> ``format``.
  ``metadata`` and ``context_management`` have no Ollama equivalent and are not sent.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.wire.errors import InvalidRequestError
from providers.adapters.base import InboundContext, UpstreamRequest
from providers.adapters.common.auth import auth_headers, extra_headers
from providers.adapters.common.content import (
    blocks_of,
    effort_of,
    image_base64,
    text_of,
    tool_result_split,
    tools_for_backend,
)
from providers.adapters.common.schema import schema_for_tool
from providers.adapters.ollama.wire import chat_url
from providers.routing import ProviderConfig, Route

Json = dict[str, Any]


def _images(blocks: list[Json], provider: ProviderConfig, where: str) -> list[str]:
    if not provider.supports_images:
        raise InvalidRequestError(
            f"{where}: provider {provider.name!r} does not accept images (the model is text-only)"
        )
    return [image_base64(block, where) for block in blocks]


def _user_message(blocks: list[tuple[int, Json]], provider: ProviderConfig, where: str) -> Json | None:
    texts: list[str] = []
    images: list[str] = []
    for index, block in blocks:
        kind = block.get("type")
        here = f"{where}.content.{index}"
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "image":
            images += _images([block], provider, here)
        elif kind == "document":
            source = block.get("source") or {}
            if source.get("type") != "text":
                raise InvalidRequestError(f"{here}: provider {provider.name!r} accepts only plain-text documents")
            texts.append(str(source.get("data", "")))
        elif kind in ("thinking", "redacted_thinking"):
            continue
        else:
            raise InvalidRequestError(f"{here}: block type {kind!r} cannot be sent to provider {provider.name!r}")
    if not texts and not images:
        return None
    out: Json = {"role": "user", "content": "\n\n".join(texts)}
    if images:
        out["images"] = images
    return out


def _user_messages(message: Json, provider: ProviderConfig, where: str, names: dict[str, str]) -> list[Json]:
    out: list[Json] = []
    trailing: list[Json] = []
    others: list[tuple[int, Json]] = []
    for index, block in enumerate(blocks_of(message.get("content"))):
        if block.get("type") != "tool_result":
            others.append((index, block))
            continue
        here = f"{where}.content.{index}"
        call_id = str(block.get("tool_use_id", ""))
        text, images = tool_result_split(block, here)
        tool: Json = {"role": "tool", "content": text}
        if call_id in names:
            tool["tool_name"] = names[call_id]
        out.append(tool)
        if images:
            trailing.append(
                {
                    "role": "user",
                    "content": f"[images returned by tool call {call_id}]",
                    "images": _images(images, provider, here),
                }
            )
    user = _user_message(others, provider, where)
    return out + trailing + ([user] if user else [])


def _assistant_message(message: Json, provider: ProviderConfig, where: str, names: dict[str, str]) -> Json:
    texts: list[str] = []
    thinking: list[str] = []
    calls: list[Json] = []
    for index, block in enumerate(blocks_of(message.get("content"))):
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            name = str(block.get("name", ""))
            names[str(block.get("id", ""))] = name
            arguments = block.get("input")
            calls.append(
                {
                    "type": "function",
                    "function": {
                        "index": len(calls),
                        "name": name,
                        "arguments": arguments if isinstance(arguments, dict) else {},
                    },
                }
            )
        elif kind == "thinking":
            thinking.append(str(block.get("thinking", "")))
        elif kind == "redacted_thinking":
            continue  # opaque to any backend but the one that made it
        else:
            raise InvalidRequestError(
                f"{where}.content.{index}: block type {kind!r} cannot be sent to provider {provider.name!r}"
            )
    out: Json = {"role": "assistant", "content": "".join(texts)}
    if thinking:
        out["thinking"] = "".join(thinking)
    if calls:
        out["tool_calls"] = calls
    return out


def messages_to_ollama(body: Json, provider: ProviderConfig) -> list[Json]:
    out: list[Json] = []
    if body.get("system"):
        out.append({"role": "system", "content": text_of(body["system"])})
    names: dict[str, str] = {}  # tool_use id -> tool name, filled as assistant turns go by
    for position, message in enumerate(body.get("messages") or []):
        where = f"messages.{position}"
        role = message.get("role")
        if role == "system":
            out.append({"role": "system", "content": text_of(message.get("content"))})
        elif role == "user":
            out += _user_messages(message, provider, where, names)
        elif role == "assistant":
            out.append(_assistant_message(message, provider, where, names))
        else:
            raise InvalidRequestError(f"{where}.role: {role!r} is not one of user, assistant, system")
    return out


def tools_to_ollama(body: Json, provider: ProviderConfig) -> list[Json]:
    raw_choice = body.get("tool_choice")
    choice: Json = raw_choice if isinstance(raw_choice, dict) else {}
    kind = choice.get("type")
    if kind not in (None, "auto", "any", "tool", "none"):
        raise InvalidRequestError(f"tool_choice.type: {kind!r} is not one of auto, any, tool, none")
    if kind == "none":
        return []
    tools = tools_for_backend(body.get("tools"), body.get("messages") or [])
    if kind == "tool":
        wanted = str(choice.get("name", ""))
        tools = [t for t in tools if t.get("name") == wanted]
        if not tools:
            raise InvalidRequestError(f"tool_choice.name: {wanted!r} is not among the declared tools")
    strict = bool(provider.options.get("strict_schema"))
    out = []
    for tool in tools:
        if tool.get("type") not in (None, "custom") and tool.get("input_schema") is None:
            raise InvalidRequestError(
                f"tools: server tool {tool.get('type')!r} ({tool.get('name')}) runs only on Anthropic's API"
            )
        function: Json = {
            "name": str(tool.get("name", "")),
            "parameters": schema_for_tool(tool.get("input_schema"), strict=strict),
        }
        if tool.get("description"):
            function["description"] = tool["description"]
        out.append({"type": "function", "function": function})
    if out and not provider.supports_tools:
        raise InvalidRequestError(f"tools: provider {provider.name!r} does not support tools")
    return out


def think_of(body: Json, provider: ProviderConfig) -> bool | str | None:
    """The ``think`` value, or None to leave it out (a model without thinking rejects the field)."""
    if not provider.supports_thinking:
        return None
    effort = effort_of(body)
    if effort is None:
        return False
    return effort if provider.options.get("think_levels") else True


def options_of(body: Json, provider: ProviderConfig) -> Json:
    """Ollama's runtime ``options`` (docs/modelfile.mdx "Valid parameters and values")."""
    num_predict = int(body["max_tokens"])
    if provider.max_output_tokens:
        num_predict = min(num_predict, provider.max_output_tokens)
    options: Json = {"num_predict": num_predict}
    num_ctx = provider.options.get("num_ctx") or provider.context_window
    if num_ctx:
        options["num_ctx"] = int(num_ctx)
    for source, target in (
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("top_k", "top_k"),
        ("stop_sequences", "stop"),
    ):
        if body.get(source) is not None:
            options[target] = body[source]
    return options


def build_body(route: Route, body: Json) -> Json:
    provider = route.provider
    out: Json = {
        "model": route.upstream_model,
        "messages": messages_to_ollama(body, provider),
        "stream": True,
        "options": options_of(body, provider),
    }
    tools = tools_to_ollama(body, provider)
    if tools:
        out["tools"] = tools
    think = think_of(body, provider)
    if think is not None:
        out["think"] = think
    output_format = (body.get("output_config") or {}).get("format")
    if isinstance(output_format, dict) and output_format.get("type") == "json_schema":
        # A JSON schema object constrains the output (docs/capabilities/structured-outputs.mdx).
        out["format"] = output_format.get("schema") or "json"
    if provider.options.get("keep_alive") is not None:
        out["keep_alive"] = provider.options["keep_alive"]
    return out


def headers_for(provider: ProviderConfig, inbound: InboundContext) -> tuple[tuple[str, str], ...]:
    headers = [("content-type", "application/json"), ("accept", "application/x-ndjson")]
    # Ollama itself has no auth; a reverse proxy in front of it, or ollama.com's API, takes a Bearer key.
    headers += auth_headers(provider) + extra_headers(provider)
    if inbound.request_id:
        headers.append(("x-request-id", inbound.request_id))
    return tuple(headers)


def build_request(route: Route, body: Json, inbound: InboundContext) -> UpstreamRequest:
    provider = route.provider
    return UpstreamRequest(
        method="POST",
        url=chat_url(provider.base_url),
        headers=headers_for(provider, inbound),
        body=orjson.dumps(build_body(route, body)),
        connect_timeout=provider.connect_timeout,
        read_timeout=provider.read_timeout,
    )
