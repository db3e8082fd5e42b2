"""OpenAI-family error bodies -> gateway errors (pure).

OpenAI: ``{"error": {"message", "type", "param", "code"}}`` (https://platform.openai.com/docs/guides/error-codes);
Azure the same shape; OpenRouter ``{"error": {"code": <int>, "message", "metadata"}}``; vLLM/llama.cpp similar or
``{"detail": ...}``/``{"message": ...}``. A context overflow becomes Anthropic's wording, which Claude Code knows
("prompt is too long").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from gateway.wire.errors import GatewayError, InvalidRequestError
from providers.adapters.errors import error_for_status
from providers.routing import ProviderConfig


def _message(data: Any) -> tuple[str, str]:
    if not isinstance(data, dict):
        return "", ""
    error = data.get("error")
    if isinstance(error, dict):
        kinds = {str(error.get("code") or ""), str(error.get("type") or "")}
        # llama.cpp: {"code": 400, "type": "exceed_context_size_error"}; OpenAI: code context_length_exceeded.
        overflow = kinds & {"context_length_exceeded", "exceed_context_size_error"}
        return str(error.get("message") or ""), (overflow.pop() if overflow else str(error.get("code") or ""))
    if isinstance(error, str):
        return error, ""
    for key in ("message", "detail"):
        if isinstance(data.get(key), str):
            return str(data[key]), ""
    return "", ""


def openai_error(provider: ProviderConfig, status: int, headers: Mapping[str, str], body: bytes) -> GatewayError:
    try:
        message, code = _message(orjson.loads(body))
    except orjson.JSONDecodeError:
        message, code = "", ""
    if not message:
        message = body[:300].decode("utf-8", errors="replace").strip() or f"HTTP {status}"
    if code in ("context_length_exceeded", "exceed_context_size_error") or "maximum context length" in message:
        return InvalidRequestError(f"prompt is too long: {message}")
    return error_for_status(provider.name, status, f"upstream: {message}", headers)
