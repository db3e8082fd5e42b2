"""Canonical inbound types: the Anthropic Messages request.

https://docs.anthropic.com/en/api/messages — every model has ``extra="allow"`` so fields we do not know
(new betas, per-message ``output_config`` of CLI 2.1.332, ``defer_loading`` on tools ...) pass through
untouched. Content blocks are discriminated on ``type``; a type we do not model becomes ``UnknownBlock`` so
that an Anthropic-format upstream still receives it, while translating adapters reject it with a clear 400.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag
from pydantic_core import ErrorDetails


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class CacheControl(_Open):
    type: str = "ephemeral"


class TextBlock(_Open):
    type: Literal["text"]
    text: str


class ImageBlock(_Open):
    type: Literal["image"]
    source: dict[str, Any]


class DocumentBlock(_Open):
    type: Literal["document"]
    source: dict[str, Any]


class ToolUseBlock(_Open):
    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any]


class ToolResultBlock(_Open):
    type: Literal["tool_result"]
    tool_use_id: str
    content: str | list[dict[str, Any]] | None = None
    is_error: bool | None = None


class ThinkingBlock(_Open):
    type: Literal["thinking"]
    thinking: str
    signature: str | None = None


class RedactedThinkingBlock(_Open):
    type: Literal["redacted_thinking"]
    data: str


class UnknownBlock(_Open):
    type: str


_KNOWN_BLOCKS = frozenset({"text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking"})


def _block_tag(value: Any) -> str:
    block_type = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    # A non-string type (a list, an object) must become a validation error, not a TypeError from `in`.
    return block_type if isinstance(block_type, str) and block_type in _KNOWN_BLOCKS else "unknown"


ContentBlock = Annotated[
    Annotated[TextBlock, Tag("text")]
    | Annotated[ImageBlock, Tag("image")]
    | Annotated[DocumentBlock, Tag("document")]
    | Annotated[ToolUseBlock, Tag("tool_use")]
    | Annotated[ToolResultBlock, Tag("tool_result")]
    | Annotated[ThinkingBlock, Tag("thinking")]
    | Annotated[RedactedThinkingBlock, Tag("redacted_thinking")]
    | Annotated[UnknownBlock, Tag("unknown")],
    Discriminator(_block_tag),
]


class Message(_Open):
    # "system" inside messages: the mid-conversation-system beta Claude Code sends (claude-code-wire.md §3).
    role: Literal["user", "assistant", "system"]
    content: str | list[ContentBlock]


class Tool(_Open):
    name: str = Field(min_length=1)
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    type: str | None = None


class ToolsField(_Open):
    """The ``tools`` of a request, validated on their own: once per distinct bytes (gateway/wire/body.py)."""

    tools: list[Tool] | None = None


class MessagesRequest(_Open):
    model: str = Field(min_length=1)
    messages: list[Message]
    max_tokens: int = Field(ge=1)
    system: str | list[TextBlock] | None = None
    tools: list[Tool] | None = None
    tool_choice: dict[str, Any] | None = None
    stream: bool = False
    metadata: dict[str, Any] | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop_sequences: list[str] | None = None
    thinking: dict[str, Any] | None = None


class CountTokensRequest(_Open):
    model: str = Field(min_length=1)
    messages: list[Message]
    system: str | list[TextBlock] | None = None
    tools: list[Tool] | None = None


_UNION_MEMBER_TAGS = _KNOWN_BLOCKS | {"unknown"}


def describe_validation_error(errors: Sequence[ErrorDetails]) -> str:
    """One message naming the field, from pydantic's ``errors()``.

    A union reports one error per member (``content.str: Input should be a valid string`` beside the block's
    real problem), so the deepest location is the most specific; union-member and tag names are dropped from it.
    """
    best = max(errors, key=lambda error: len(error["loc"]))
    loc = list(best["loc"])
    parts: list[str] = []
    for index, part in enumerate(loc):
        if isinstance(part, str) and ("[" in part or part == "str"):
            continue
        after_index = index > 0 and isinstance(loc[index - 1], int)
        if after_index and part in _UNION_MEMBER_TAGS and index + 1 < len(loc):
            continue  # the discriminator tag of a content block, not a field
        parts.append(str(part))
    return f"{'.'.join(parts) or 'body'}: {best['msg']}"
