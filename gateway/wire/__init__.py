"""Canonical wire types of the inbound API (the Anthropic Messages format)."""

from gateway.wire.messages import (
    ContentBlock,
    CountTokensRequest,
    Message,
    MessagesRequest,
    TextBlock,
    Tool,
    ToolResultBlock,
    ToolUseBlock,
    UnknownBlock,
)

__all__ = [
    "ContentBlock",
    "CountTokensRequest",
    "Message",
    "MessagesRequest",
    "TextBlock",
    "Tool",
    "ToolResultBlock",
    "ToolUseBlock",
    "UnknownBlock",
]
