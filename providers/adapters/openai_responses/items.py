"""Anthropic ``system`` + ``messages`` -> Responses ``instructions`` + ``input`` items (pure).

Input item shapes: https://platform.openai.com/docs/api-reference/responses/create#responses-create-input
(messages with ``input_text``/``input_image``/``input_file`` parts, assistant ``output_text``, ``function_call``,
``function_call_output`` whose ``output`` is a string or a list of input parts, ``reasoning`` items).

- ``system`` -> ``instructions``. A ``role:"system"`` entry inside ``messages`` (Claude Code's mid-conversation
  system beta) -> a ``developer`` message in place (option ``system_role: "system"`` for servers that prefer it), or
  folded into ``instructions`` with ``system_messages: "fold"``. ``cache_control`` has no equivalent (OpenAI caches
  prefixes by itself) and is dropped.
- user blocks in order; each ``tool_result`` becomes a ``function_call_output`` at its place (``call_id`` = the
  tool_use id, so ids round-trip). Its ``output`` is a string, or a list when it carries images or documents.
  ``is_error`` is written into the text, as in ``common.content.tool_result_split`` (there is no flag).
- images -> ``input_image`` (data URL or URL); documents -> ``input_file`` (base64 as a data URL, or ``file_url``),
  plain-text documents -> ``input_text`` (https://platform.openai.com/docs/guides/pdf-files).
- assistant blocks in order: text -> ``output_text`` messages, ``tool_use`` -> ``function_call``. A thinking (or
  redacted_thinking) block whose signature is one we minted for a Responses reasoning item is restored as that
  ``reasoning`` item (id, summary, encrypted_content), when the provider supports thinking. Other thinking is
  dropped: an Anthropic signature means nothing to OpenAI, and unsigned text cannot be given back as reasoning.
- Any other block raises a 400 naming it.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.wire.errors import InvalidRequestError
from providers.adapters.common.content import blocks_of, image_url, text_of
from providers.adapters.common.signatures import signature_read
from providers.adapters.common.toolnames import toolname_encode
from providers.adapters.openai_responses.wire import SIGNATURE_KIND
from providers.routing import ProviderConfig

Json = dict[str, Any]


def _unsupported(kind: Any, provider: ProviderConfig, where: str) -> InvalidRequestError:
    return InvalidRequestError(f"{where}: block type {kind!r} cannot be sent to provider {provider.name!r}")


def _image_part(block: Json, provider: ProviderConfig, where: str) -> Json:
    if not provider.supports_images:
        raise InvalidRequestError(f"{where}: provider {provider.name!r} does not accept images")
    return {"type": "input_image", "image_url": image_url(block, where), "detail": "auto"}


def _document_part(block: Json, where: str) -> Json:
    source = block.get("source") or {}
    kind = source.get("type")
    if kind == "text":
        return {"type": "input_text", "text": str(source.get("data", ""))}
    if kind == "base64":
        media = source.get("media_type") or "application/pdf"
        return {
            "type": "input_file",
            "filename": str(block.get("title") or "document.pdf"),
            "file_data": f"data:{media};base64,{source.get('data', '')}",
        }
    if kind == "url":
        return {"type": "input_file", "file_url": str(source.get("url", ""))}
    raise InvalidRequestError(f"{where}: document source type {kind!r} cannot be sent to this provider")


def _input_part(block: Json, provider: ProviderConfig, where: str) -> Json:
    kind = block.get("type")
    if kind == "text":
        return {"type": "input_text", "text": str(block.get("text", ""))}
    if kind == "image":
        return _image_part(block, provider, where)
    if kind == "document":
        return _document_part(block, where)
    raise _unsupported(kind, provider, where)


def _tool_output(block: Json, provider: ProviderConfig, where: str) -> str | list[Json]:
    parts = [
        _input_part(part, provider, f"{where}.content.{i}") for i, part in enumerate(blocks_of(block.get("content")))
    ]
    if all(part["type"] == "input_text" for part in parts):
        text = "\n\n".join(str(part["text"]) for part in parts)
        if block.get("is_error"):
            text = f"[tool error] {text}" if text else "[tool error]"
        return text
    if block.get("is_error"):
        parts.insert(0, {"type": "input_text", "text": "[tool error]"})
    return parts


def _user_items(message: Json, provider: ProviderConfig, where: str) -> list[Json]:
    items: list[Json] = []
    parts: list[Json] = []
    for index, block in enumerate(blocks_of(message.get("content"))):
        here = f"{where}.content.{index}"
        if block.get("type") != "tool_result":
            parts.append(_input_part(block, provider, here))
            continue
        if parts:
            items.append({"type": "message", "role": "user", "content": parts})
            parts = []
        items.append(
            {
                "type": "function_call_output",
                "call_id": str(block.get("tool_use_id", "")),
                "output": _tool_output(block, provider, here),
            }
        )
    if parts:
        items.append({"type": "message", "role": "user", "content": parts})
    return items


def _reasoning_item(signature: Any, thinking: str, secret: bytes) -> Json | None:
    payload = signature_read(signature if isinstance(signature, str) else None, secret)
    if not payload or payload.get("k") != SIGNATURE_KIND:
        return None
    item_id, encrypted = payload.get("id"), payload.get("enc")
    if not isinstance(item_id, str) or not isinstance(encrypted, str):
        return None
    summary = [{"type": "summary_text", "text": thinking}] if thinking else []
    return {"type": "reasoning", "id": item_id, "summary": summary, "encrypted_content": encrypted}


def _assistant_items(message: Json, provider: ProviderConfig, secret: bytes, where: str) -> list[Json]:
    items: list[Json] = []
    texts: list[Json] = []
    for index, block in enumerate(blocks_of(message.get("content"))):
        kind = block.get("type")
        if kind == "text":
            if block.get("text"):
                texts.append({"type": "output_text", "text": str(block["text"])})
            continue
        if texts:
            items.append({"type": "message", "role": "assistant", "content": texts})
            texts = []
        if kind == "tool_use":
            items.append(
                {
                    "type": "function_call",
                    "call_id": str(block.get("id", "")),
                    "name": toolname_encode(str(block.get("name", ""))),
                    "arguments": orjson.dumps(block.get("input") or {}).decode(),
                }
            )
        elif kind in ("thinking", "redacted_thinking"):
            signature = block.get("signature") if kind == "thinking" else block.get("data")
            reasoning = _reasoning_item(signature, str(block.get("thinking") or ""), secret)
            if reasoning is not None and provider.supports_thinking:
                items.append(reasoning)
        else:
            raise _unsupported(kind, provider, f"{where}.content.{index}")
    if texts:
        items.append({"type": "message", "role": "assistant", "content": texts})
    return items


def _system_text(content: Any, provider: ProviderConfig, where: str) -> str:
    for index, block in enumerate(blocks_of(content)):
        if block.get("type") != "text":
            raise _unsupported(block.get("type"), provider, f"{where}.content.{index}")
    return text_of(content)


def input_items(body: Json, provider: ProviderConfig, secret: bytes) -> tuple[str, list[Json]]:
    """(instructions, input items) of an Anthropic request."""
    fold = provider.options.get("system_messages") == "fold"
    role = "system" if provider.options.get("system_role") == "system" else "developer"
    instructions = [_system_text(body["system"], provider, "system")] if body.get("system") else []
    items: list[Json] = []
    for position, message in enumerate(body.get("messages") or []):
        where = f"messages.{position}"
        kind = message.get("role")
        if kind == "system":
            text = _system_text(message.get("content"), provider, where)
            if fold:
                instructions.append(text)
            else:
                items.append({"type": "message", "role": role, "content": [{"type": "input_text", "text": text}]})
        elif kind == "user":
            items += _user_items(message, provider, where)
        else:
            items += _assistant_items(message, provider, secret, where)
    return "\n\n".join(t for t in instructions if t), items
