"""Wire facts of Anthropic-format upstreams (https://docs.anthropic.com/en/api/messages)."""

from __future__ import annotations

DEFAULT_VERSION = "2023-06-01"
MESSAGES_PATH = "/v1/messages"
COUNT_TOKENS_SUFFIX = "/count_tokens"  # POST /v1/messages/count_tokens


def messages_url(base_url: str) -> str:
    """Accept a base URL or the full Messages URL (Lynkr's AZURE_ANTHROPIC_ENDPOINT is the full URL)."""
    base = base_url.rstrip("/")
    if base.endswith(MESSAGES_PATH):
        return base
    if base.endswith("/v1"):
        return base + "/messages"
    return base + MESSAGES_PATH


def count_tokens_url(base_url: str) -> str:
    return messages_url(base_url) + COUNT_TOKENS_SUFFIX
