"""Wire facts of OpenAI-chat-completions servers."""

from __future__ import annotations

from urllib.parse import urlsplit

# finish_reason -> Anthropic stop_reason (https://platform.openai.com/docs/api-reference/chat/object).
# "function_call" is the deprecated single-function form of "tool_calls".
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def chat_url(base_url: str) -> str:
    """A full endpoint URL is used as given (``.../chat/completions``, Databricks ``.../invocations``); a base URL
    gets ``/v1/chat/completions`` (or ``/chat/completions`` when it already ends in a version segment)."""
    base = base_url.rstrip("/")
    path = urlsplit(base).path
    if path.endswith(("/chat/completions", "/invocations")):
        return base
    last = path.rsplit("/", 1)[-1]
    if (last.startswith("v") and last[1:].isdigit()) or last in ("openai", "api"):
        return base + "/chat/completions"
    return base + "/v1/chat/completions"
