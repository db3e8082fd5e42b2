"""Reading Anthropic request content for translation to other backends (pure)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

import orjson

from gateway.wire.body import SharedTools
from gateway.wire.errors import InvalidRequestError
from providers.adapters.common.toolnames import toolname_encode

Block = dict[str, Any]


def text_of(content: Any) -> str:
    """The text of a string or a list of blocks (non-text blocks are the caller's business)."""
    if isinstance(content, str):
        return content
    return "\n\n".join(str(b.get("text", "")) for b in content or [] if isinstance(b, dict) and b.get("type") == "text")


def blocks_of(content: Any) -> list[Block]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return [b for b in content or [] if isinstance(b, dict)]


def image_url(block: Block, where: str) -> str:
    """An Anthropic image block as a URL: base64 sources become data URLs
    (https://docs.anthropic.com/en/docs/build-with-claude/vision), URL sources pass as they are."""
    source = block.get("source") or {}
    kind = source.get("type")
    if kind == "base64":
        return f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
    if kind == "url":
        return str(source.get("url", ""))
    raise InvalidRequestError(f"{where}: image source type {kind!r} cannot be sent to this provider")


def image_base64(block: Block, where: str) -> str:
    """Raw base64 of an image (Ollama takes only that)."""
    source = block.get("source") or {}
    if source.get("type") == "base64":
        return str(source.get("data", ""))
    raise InvalidRequestError(f"{where}: only base64 images can be sent to this provider (got {source.get('type')!r})")


def tool_result_split(block: Block, where: str) -> tuple[str, list[Block]]:
    """A tool_result's text and its images. ``is_error`` is kept visible in the text: chat backends have no flag."""
    content = block.get("content")
    texts: list[str] = []
    images: list[Block] = []
    for index, part in enumerate(blocks_of(content)):
        kind = part.get("type")
        if kind == "text":
            texts.append(str(part.get("text", "")))
        elif kind == "image":
            images.append(part)
        else:
            raise InvalidRequestError(f"{where}.content.{index}: block type {kind!r} in a tool_result is not supported")
    text = "\n\n".join(texts)
    if block.get("is_error"):
        text = f"[tool error] {text}" if text else "[tool error]"
    return text, images


_FUNCTION_LINE = re.compile(r"<function>(\{.*?\})</function>", re.S)


def tools_for_backend(tools: list[Block] | None, messages: list[Block]) -> list[Block]:
    """The tools to declare upstream.

    Claude Code 2.1.332 marks some tools ``defer_loading`` and discovers them with ToolSearch, whose result carries
    the schemas as ``<function>{...}</function>`` lines (claude-code-wire.md §8). Backends have no deferred loading:
    deferred entries are left out, and every tool a ToolSearch result revealed is declared, so the model can call it.
    """
    declared = tools_declared(tools)
    return declared + tools_revealed(declared, messages)


def tools_declared(tools: list[Block] | None) -> list[Block]:
    """The request's own tools that are declared upstream: all but the deferred ones. Of a request's shared tools
    (gateway/wire/body.py) the list is made once: the caller must not change it."""
    if isinstance(tools, SharedTools):
        return tools.derive(_DECLARED, lambda: tools_declared(list(tools)))
    return [t for t in tools or [] if not t.get("defer_loading")]


_DECLARED = "content.tools_declared"


def tools_revealed(declared: list[Block], messages: list[Block]) -> list[Block]:
    """The tools ToolSearch results in ``messages`` revealed that ``declared`` does not have, in order of appearance."""
    if not any(t.get("name") == "ToolSearch" for t in declared):
        return []
    names = {t.get("name") for t in declared}
    revealed: list[Block] = []
    for message in messages:
        for block in blocks_of(message.get("content")):
            if block.get("type") != "tool_result":
                continue
            for match in _FUNCTION_LINE.finditer(text_of(block.get("content") or "")):
                try:
                    spec = orjson.loads(match.group(1))
                except orjson.JSONDecodeError:
                    continue
                name = spec.get("name") if isinstance(spec, dict) else None
                if isinstance(name, str) and name not in names:
                    names.add(name)
                    revealed.append(
                        {
                            "name": name,
                            "description": spec.get("description", ""),
                            "input_schema": spec.get("parameters"),
                        }
                    )
    return revealed


def effort_of(body: dict[str, Any]) -> str | None:
    """Anthropic thinking/effort -> a reasoning effort (low|medium|high), or None when thinking is off.

    ``output_config.effort`` wins (Claude Code sends it with adaptive thinking); else a budget maps by size.
    """
    thinking = body.get("thinking") or {}
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind == "disabled":
        return None
    effort = (body.get("output_config") or {}).get("effort")
    if isinstance(effort, str) and effort:
        return {"max": "high", "xhigh": "high", "minimal": "low"}.get(effort, effort)
    if kind == "enabled":
        budget = int(thinking.get("budget_tokens") or 0)
        return "low" if budget < 4096 else "medium" if budget < 16384 else "high"
    if kind == "adaptive":
        return "medium"
    return None


def user_hash(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """(stable user id, session id) from ``metadata.user_id``, hashed: upstreams get no raw device ids.

    Claude Code sends a JSON string ``{"device_id", "account_uuid", "session_id"}`` (claude-code-wire.md §3)."""
    raw = (body.get("metadata") or {}).get("user_id")
    if not isinstance(raw, str) or not raw:
        return None, None
    session: str | None = None
    identity = raw
    try:
        parsed = orjson.loads(raw)
        if isinstance(parsed, dict):
            identity = str(parsed.get("device_id") or parsed.get("account_uuid") or raw)
            session = str(parsed.get("session_id") or "") or None
    except orjson.JSONDecodeError:
        pass
    user = hashlib.sha256(identity.encode()).hexdigest()[:32]
    return user, (hashlib.sha256(session.encode()).hexdigest()[:32] if session else None)


def tool_choice_openai(choice: Any, *, named: Callable[[str], Any]) -> tuple[Any, bool | None]:
    """(tool_choice, parallel_tool_calls) from Anthropic's tool_choice, for OpenAI-style APIs: auto -> auto,
    any -> required, tool -> ``named(name)`` (the API's shape for one function), none -> none;
    ``disable_parallel_tool_use`` -> ``parallel_tool_calls: false``."""
    if not isinstance(choice, dict):
        return None, None
    kind = choice.get("type")
    parallel = False if choice.get("disable_parallel_tool_use") else None
    if kind == "auto":
        return "auto", parallel
    if kind == "any":
        return "required", parallel
    if kind == "tool":
        return named(toolname_encode(str(choice.get("name", "")))), parallel
    if kind == "none":
        return "none", None
    raise InvalidRequestError(f"tool_choice.type: {kind!r} is not one of auto, any, tool, none")
