"""An MCP ``CallToolResult`` as a registry tool result: JSON content blocks bounded by the tool output limit.

Blocks keep the MCP wire names (https://modelcontextprotocol.io/specification/2025-11-25/server/tools#tool-result)
so the /mcp endpoint can hand them on as they are. Text is cut at the byte budget; a binary block (image, audio,
blob resource) that does not fit whole is replaced by a note, never cut (a cut base64 image is garbage).
"""

from __future__ import annotations

from typing import Any

import mcp_types as types
import orjson


def clip(text: str, budget: int) -> tuple[str, bool]:
    """``text`` cut to at most ``budget`` UTF-8 bytes (on a character boundary) and whether it was cut."""
    data = text.encode()
    if len(data) <= budget:
        return text, False
    return data[: max(budget, 0)].decode(errors="ignore"), True


class _Budget:
    def __init__(self, max_bytes: int) -> None:
        self.left = max_bytes
        self.truncated = False

    def text(self, text: str) -> str:
        kept, cut = clip(text, self.left)
        self.left -= len(kept.encode())
        self.truncated |= cut
        return kept

    def binary(self, kind: str, mime_type: str, data: str, extra: dict[str, Any]) -> dict[str, Any]:
        if len(data) <= self.left:
            self.left -= len(data)
            return {"type": kind, "mimeType": mime_type, "data": data, **extra}
        self.truncated = True
        return {"type": kind, "mimeType": mime_type, "omitted": f"{len(data)} bytes, over the output limit", **extra}


def _block(block: types.ContentBlock, budget: _Budget) -> dict[str, Any]:
    if isinstance(block, types.TextContent):
        return {"type": "text", "text": budget.text(block.text)}
    if isinstance(block, types.ImageContent):
        return budget.binary("image", block.mime_type, block.data, {})
    if isinstance(block, types.AudioContent):
        return budget.binary("audio", block.mime_type, block.data, {})
    if isinstance(block, types.ResourceLink):
        link = {"type": "resource_link", "uri": str(block.uri), "name": block.name}
        if block.description:
            link["description"] = budget.text(block.description)
        return link
    if isinstance(block, types.EmbeddedResource):
        resource = block.resource
        if isinstance(resource, types.TextResourceContents):
            return {"type": "resource", "uri": str(resource.uri), "text": budget.text(resource.text)}
        return budget.binary("resource", resource.mime_type or "", resource.blob, {"uri": str(resource.uri)})
    # A block type of a later protocol revision: its JSON, bounded like text.
    return {"type": "text", "text": budget.text(orjson.dumps(block.model_dump(mode="json")).decode())}


def result_payload(result: types.CallToolResult, *, max_bytes: int) -> dict[str, Any]:
    """``{"content": [...], "structured_content"?: {...}, "truncated"?: true}`` within ``max_bytes``."""
    budget = _Budget(max_bytes)
    payload: dict[str, Any] = {"content": [_block(block, budget) for block in result.content]}
    if result.structured_content is not None:
        encoded = orjson.dumps(result.structured_content)
        if len(encoded) <= budget.left:
            payload["structured_content"] = result.structured_content
        else:
            budget.truncated = True
    if budget.truncated:
        payload["truncated"] = True
    return payload


def result_error_text(result: types.CallToolResult, *, max_bytes: int) -> str:
    """The text of an ``isError`` result (what the model reads as the tool error)."""
    texts = [block.text for block in result.content if isinstance(block, types.TextContent)]
    text = "\n".join(texts).strip() or "the tool reported an error without a message"
    return clip(text, max_bytes)[0]
