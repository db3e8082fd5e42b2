"""Responses API errors -> Anthropic error types (pure).

HTTP error bodies have the shape of every OpenAI endpoint (``{"error": {"message", "type", "param", "code"}}``), so
``openai_error`` from the chat adapter maps them. Inside a stream (HTTP 200) an error arrives as an ``error`` event
(``{"type": "error", "code", "message", "param"}``) or as ``response.failed`` whose ``response.error`` is
``{"code", "message"}`` (https://platform.openai.com/docs/api-reference/responses-streaming/error and
https://platform.openai.com/docs/api-reference/responses/object#responses/object-error); ``error_event`` maps both.
"""

from __future__ import annotations

from typing import Any

from providers.adapters.openai_chat.errors import openai_error

__all__ = ["error_event", "openai_error"]

_RATE_LIMITED = frozenset({"rate_limit_exceeded", "rate_limit_error", "too_many_requests"})
_OVERLOADED = frozenset({"server_is_overloaded", "overloaded", "overloaded_error", "service_unavailable"})
_TIMEOUT = frozenset({"vector_store_timeout", "timeout", "request_timeout"})


def error_event(error: Any) -> tuple[str, str]:
    """(Anthropic error type, message) of a Responses error object or ``error`` event."""
    if isinstance(error, dict) and isinstance(error.get("error"), dict):
        error = error["error"]  # some servers nest the object: {"type": "error", "error": {...}}
    if not isinstance(error, dict):
        return "api_error", f"upstream: {error or 'upstream error'}"
    code = str(error.get("code") or error.get("type") or "")
    message = str(error.get("message") or code or "upstream error")
    if code == "context_length_exceeded":
        # Anthropic's wording, which Claude Code recognises.
        return "invalid_request_error", f"prompt is too long: {message}"
    if code in _RATE_LIMITED:
        return "rate_limit_error", f"upstream: {message}"
    if code in _OVERLOADED:
        return "overloaded_error", f"upstream: {message}"
    if code in _TIMEOUT:
        return "timeout_error", f"upstream: {message}"
    # ResponseError codes about the input: invalid_prompt, invalid_image*, image_*, unsupported_image_media_type ...
    if code.startswith(("invalid_", "image_", "unsupported_", "empty_", "failed_to_download")):
        return "invalid_request_error", f"upstream: {message}"
    return "api_error", f"upstream: {message}"
