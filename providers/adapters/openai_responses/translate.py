"""Anthropic Messages request -> OpenAI Responses API request (pure).

Mapping (https://docs.anthropic.com/en/api/messages -> https://platform.openai.com/docs/api-reference/responses/create):
- ``system``/``messages`` -> ``instructions``/``input`` (items.py has the details).
- tools -> flat function tools ``{"type": "function", "name", "description", "parameters", "strict": false}``
  (schema whole, or cleaned with the option ``strict_schema``; strict mode would also demand every property be
  required, which Anthropic schemas are not); deferred tools as ``tools_for_backend`` decides; names made valid
  reversibly. ``tool_choice`` auto/any/tool/none -> auto/required/``{"type": "function", "name"}``/none;
  ``disable_parallel_tool_use`` -> ``parallel_tool_calls: false``. Server tools (web search ...) run only on
  Anthropic's API: 400.
- thinking / ``output_config.effort`` -> ``reasoning: {"effort", "summary": "auto"}`` with
  ``include: ["reasoning.encrypted_content"]``, only for providers marked supports_thinking
  (https://platform.openai.com/docs/guides/reasoning#encrypted-reasoning-items).
- ``store: false`` always: the gateway sends the whole conversation each turn and never refers to stored responses.
- ``output_config.format`` json_schema -> ``text.format`` (https://platform.openai.com/docs/guides/structured-outputs).
- ``max_tokens`` clamped to the provider's output limit (and raised to OpenAI's minimum of 16) ->
  ``max_output_tokens``; ``temperature``, ``top_p`` kept; ``metadata.user_id`` -> hashed ``user``, and its session
  -> ``prompt_cache_key`` with the option ``prompt_cache_key``.
- Not representable: ``stop_sequences`` (the Responses API has no stop parameter) -> 400. ``top_k`` (no such
  sampling knob) and ``context_management`` (Anthropic-side context editing) are dropped, as the chat adapter does.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.wire.errors import InvalidRequestError
from providers.adapters.base import InboundContext, UpstreamRequest
from providers.adapters.common.content import effort_of, tool_choice_openai, tools_for_backend, user_hash
from providers.adapters.common.schema import schema_for_tool
from providers.adapters.common.toolnames import toolname_encode
from providers.adapters.openai_chat.translate import headers_for
from providers.adapters.openai_responses.items import input_items
from providers.adapters.openai_responses.wire import MIN_OUTPUT_TOKENS, responses_url
from providers.routing import ProviderConfig, Route

Json = dict[str, Any]


def tools_to_responses(body: Json, provider: ProviderConfig) -> list[Json]:
    strict = bool(provider.options.get("strict_schema"))
    out = []
    for tool in tools_for_backend(body.get("tools"), body.get("messages") or []):
        if tool.get("type") not in (None, "custom") and tool.get("input_schema") is None:
            raise InvalidRequestError(
                f"tools: server tool {tool.get('type')!r} ({tool.get('name')}) runs only on Anthropic's API"
            )
        function: Json = {"type": "function", "name": toolname_encode(str(tool.get("name", "")))}
        if tool.get("description"):
            function["description"] = tool["description"]
        function["parameters"] = schema_for_tool(tool.get("input_schema"), strict=strict)
        function["strict"] = False
        out.append(function)
    return out


def tool_choice_to_responses(choice: Any) -> tuple[Any, bool | None]:
    """(tool_choice, parallel_tool_calls) from Anthropic's tool_choice."""
    return tool_choice_openai(choice, named=lambda name: {"type": "function", "name": name})


def _text_format(body: Json) -> Json | None:
    output_format = (body.get("output_config") or {}).get("format")
    if not isinstance(output_format, dict) or output_format.get("type") != "json_schema":
        return None
    # strict: false for the same reason as tools; the model is still asked for this schema.
    schema = output_format.get("schema") or {}
    return {"format": {"type": "json_schema", "name": "output", "schema": schema, "strict": False}}


def build_body(route: Route, body: Json, secret: bytes) -> Json:
    provider = route.provider
    instructions, items = input_items(body, provider, secret)
    out: Json = {"model": route.upstream_model}
    if instructions:
        out["instructions"] = instructions
    out.update({"input": items, "stream": True, "store": False})
    max_tokens = int(body["max_tokens"])
    if provider.max_output_tokens:
        max_tokens = min(max_tokens, provider.max_output_tokens)
    out["max_output_tokens"] = max(max_tokens, MIN_OUTPUT_TOKENS)
    tools = tools_to_responses(body, provider)
    if tools:
        if not provider.supports_tools:
            raise InvalidRequestError(f"tools: provider {provider.name!r} does not support tools")
        out["tools"] = tools
        choice, parallel = tool_choice_to_responses(body.get("tool_choice"))
        if choice is not None:
            out["tool_choice"] = choice
        if parallel is not None:
            out["parallel_tool_calls"] = parallel
    if body.get("stop_sequences"):
        raise InvalidRequestError(f"stop_sequences: provider {provider.name!r} (OpenAI Responses API) has none")
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = body[key]
    effort = effort_of(body)
    if effort and provider.supports_thinking:
        out["reasoning"] = {"effort": effort, "summary": "auto"}
        out["include"] = ["reasoning.encrypted_content"]
    text = _text_format(body)
    if text is not None:
        out["text"] = text
    user, session = user_hash(body)
    if user:
        out["user"] = user
    if session and provider.options.get("prompt_cache_key"):
        out["prompt_cache_key"] = session
    return out


def build_request(route: Route, body: Json, inbound: InboundContext) -> UpstreamRequest:
    provider = route.provider
    return UpstreamRequest(
        method="POST",
        url=responses_url(provider.base_url, api_version=str(provider.options.get("api_version") or "")),
        headers=headers_for(provider, inbound),
        body=orjson.dumps(build_body(route, body, inbound.signing_key)),
        connect_timeout=provider.connect_timeout,
        read_timeout=provider.read_timeout,
    )
