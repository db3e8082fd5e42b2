"""Wire facts of the OpenAI Responses API (pure).

Reference: https://platform.openai.com/docs/api-reference/responses (request, Response object, streaming events);
Azure: https://learn.microsoft.com/azure/ai-foundry/openai/how-to/responses (``/openai/v1/responses``, or the older
``/openai/responses?api-version=...``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

Json = dict[str, Any]

# The older Azure route needs an api-version; the v1 route takes none.
AZURE_API_VERSION = "2025-04-01-preview"
_AZURE_HOSTS = (".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com")

# OpenAI refuses a smaller ``max_output_tokens`` ("integer below minimum value. Expected a value >= 16"); Claude
# Code's count_tokens fallback asks for max_tokens 1 (claude-code-wire.md §1) and only reads the usage.
MIN_OUTPUT_TOKENS = 16

# ``incomplete_details.reason`` -> Anthropic stop_reason. The reference documents max_output_tokens and
# content_filter; its response.incomplete example says "max_tokens".
INCOMPLETE_REASONS = {"max_output_tokens": "max_tokens", "max_tokens": "max_tokens", "content_filter": "refusal"}

# Signature payload kind of a reasoning item we relayed (common/signatures.py).
SIGNATURE_KIND = "responses"


def responses_url(base_url: str, *, api_version: str = "") -> str:
    """A full endpoint URL (path ending in ``/responses``) is used as given; a base URL gets ``/v1/responses``
    (``/responses`` after a version segment, ``/openai/v1/responses`` for a bare Azure resource)."""
    parts = urlsplit(base_url.strip())
    path = parts.path.rstrip("/")
    last = path.rsplit("/", 1)[-1]
    if path.endswith("/responses"):
        pass
    elif last.startswith("v") and last[1:].isdigit():
        path += "/responses"
    elif last == "openai" or (not path and (parts.hostname or "").endswith(_AZURE_HOSTS)):
        path += "/openai/v1/responses" if not path else "/v1/responses"
    else:
        path += "/v1/responses"
    if path.endswith("/openai/responses"):
        query = dict(parse_qsl(parts.query))
        query.setdefault("api-version", api_version or AZURE_API_VERSION)
        parts = parts._replace(query=urlencode(query))
    return urlunsplit(parts._replace(path=path))


def usage_from_responses(usage: Any) -> dict[str, int] | None:
    """Response ``usage`` -> Anthropic usage. OpenAI counts cached tokens inside input_tokens; Anthropic apart."""
    if not isinstance(usage, dict):
        return None
    details = usage.get("input_tokens_details")
    cached = int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
    return {
        "input_tokens": max(int(usage.get("input_tokens") or 0) - cached, 0),
        "output_tokens": int(usage.get("output_tokens") or 0),
        "cache_read_input_tokens": cached,
    }
