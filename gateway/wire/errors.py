"""The error tree of the inbound API (pure: no Django, usable by translation code).

Anthropic's error types and status codes: https://docs.anthropic.com/en/api/errors
"""

from __future__ import annotations

from typing import ClassVar


class GatewayError(Exception):
    status: int = 500
    error_type: ClassVar[str] = "api_error"
    retryable: bool = True

    def __init__(
        self,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        retryable: bool | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.headers = dict(headers or {})
        if retryable is not None:
            self.retryable = retryable
        if status is not None:
            self.status = status

    def body(self, request_id: str) -> dict[str, object]:
        return {
            "type": "error",
            "error": {"type": self.error_type, "message": self.message},
            "request_id": request_id,
        }


class InvalidRequestError(GatewayError):
    status = 400
    error_type = "invalid_request_error"
    retryable = False


class AuthenticationError(GatewayError):
    status = 401
    error_type = "authentication_error"
    retryable = False


class BillingError(GatewayError):
    status = 402
    error_type = "billing_error"
    retryable = False


class PermissionDeniedError(GatewayError):
    status = 403
    error_type = "permission_error"
    retryable = False


class NotFoundError(GatewayError):
    status = 404
    error_type = "not_found_error"
    retryable = False


class RequestTooLargeError(GatewayError):
    status = 413
    error_type = "request_too_large"
    retryable = False


class RateLimitError(GatewayError):
    status = 429
    error_type = "rate_limit_error"
    retryable = True


class ApiError(GatewayError):
    status = 500
    error_type = "api_error"
    retryable = True


class TimeoutError_(GatewayError):
    status = 504
    error_type = "timeout_error"
    retryable = True


class OverloadedError(GatewayError):
    status = 529
    error_type = "overloaded_error"
    retryable = True


class UpstreamPoolFullError(OverloadedError):
    """All of the gateway's upstream connections (LYNKR_UPSTREAM_MAX_CONNECTIONS) stayed busy for the connect
    timeout: a local overload, so it is not the provider's failure (no breaker count, no retry or failover, which
    would only wait on the same pool); the client may retry."""


ERRORS_BY_TYPE: dict[str, type[GatewayError]] = {
    cls.error_type: cls
    for cls in (
        InvalidRequestError,
        AuthenticationError,
        BillingError,
        PermissionDeniedError,
        NotFoundError,
        RequestTooLargeError,
        RateLimitError,
        ApiError,
        TimeoutError_,
        OverloadedError,
    )
}
