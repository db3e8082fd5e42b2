"""Rendering of the gateway's errors in Anthropic's shape.

``{"type": "error", "error": {"type": ..., "message": ...}, "request_id": ...}`` with Anthropic's status codes
(https://docs.anthropic.com/en/api/errors). ``x-should-retry: false`` marks a permanent failure: Claude Code
otherwise retries 401/429/5xx for about three minutes (claude-code-wire.md §5).
"""

from __future__ import annotations

import orjson
from django.http import HttpResponse

from gateway.wire.errors import (
    ERRORS_BY_TYPE,
    ApiError,
    AuthenticationError,
    BillingError,
    GatewayError,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    RequestTooLargeError,
    TimeoutError_,
    UpstreamPoolFullError,
)

__all__ = [
    "ERRORS_BY_TYPE",
    "ApiError",
    "AuthenticationError",
    "BillingError",
    "GatewayError",
    "InvalidRequestError",
    "NotFoundError",
    "OverloadedError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTooLargeError",
    "TimeoutError_",
    "UpstreamPoolFullError",
    "error_response",
]


def error_response(error: GatewayError, request_id: str) -> HttpResponse:
    response = HttpResponse(orjson.dumps(error.body(request_id)), status=error.status, content_type="application/json")
    for name, value in error.headers.items():
        response[name] = value
    if not error.retryable:
        response["x-should-retry"] = "false"
    return response
