"""Mapping of upstream HTTP failures to the gateway's Anthropic-shaped errors (pure).

What Claude Code does with each status is in claude-code-wire.md §5: 429/529 with ``retry-after`` (seconds)
are back-pressure, 401 from *our* upstream credential is a gateway misconfiguration (the client's own key is
fine, so it must not be shown as "Failed to authenticate"), 404 reads as "issue with the selected model".
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from gateway.wire.errors import (
    ApiError,
    GatewayError,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    RateLimitError,
    RequestTooLargeError,
    TimeoutError_,
)


def retry_after_seconds(headers: Mapping[str, str]) -> str | None:
    """``retry-after`` in whole seconds; ``retry-after-ms`` converted, as the CLI ignores the ms form."""
    value = (headers.get("retry-after") or "").strip()
    if re.fullmatch(r"[0-9]{1,9}", value):
        return value
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            seconds = float(ms) / 1000
        except ValueError:
            return None
        if math.isfinite(seconds) and seconds >= 0:
            return str(max(1, math.ceil(seconds)))
    return None


def error_for_status(provider_name: str, status: int, message: str, headers: Mapping[str, str]) -> GatewayError:
    if status == 429:
        retry_after = retry_after_seconds(headers)
        return RateLimitError(message, headers={"retry-after": retry_after} if retry_after else None)
    if status == 529:
        return OverloadedError(message)
    if status in (401, 403):
        return ApiError(
            f"provider {provider_name!r} rejected the gateway's credentials (HTTP {status}): {message}",
            retryable=False,
        )
    if status == 404:
        return NotFoundError(message)
    if status == 413:
        return RequestTooLargeError(message)
    if status == 409:
        return ApiError(message, status=409)  # a conflict upstream (e.g. a concurrent request): worth a retry
    if status in (408, 504):
        return TimeoutError_(message)
    if status >= 500:
        return ApiError(message)
    return InvalidRequestError(message)
