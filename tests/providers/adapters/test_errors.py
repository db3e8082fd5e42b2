"""Upstream HTTP failures mapped to the gateway's Anthropic-shaped errors (claude-code-wire.md §5 and §7.8)."""

from __future__ import annotations

import pytest

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
from providers.adapters.errors import error_for_status, retry_after_seconds


@pytest.mark.parametrize(
    ("status", "cls", "error_type", "gateway_status", "retryable"),
    [
        (400, InvalidRequestError, "invalid_request_error", 400, False),
        (402, InvalidRequestError, "invalid_request_error", 400, False),
        (409, ApiError, "api_error", 409, True),  # a conflict upstream is worth a retry
        (422, InvalidRequestError, "invalid_request_error", 400, False),
        (404, NotFoundError, "not_found_error", 404, False),
        (413, RequestTooLargeError, "request_too_large", 413, False),
        (408, TimeoutError_, "timeout_error", 504, True),
        (504, TimeoutError_, "timeout_error", 504, True),
        (429, RateLimitError, "rate_limit_error", 429, True),
        (529, OverloadedError, "overloaded_error", 529, True),
        (500, ApiError, "api_error", 500, True),
        (502, ApiError, "api_error", 500, True),
        (503, ApiError, "api_error", 500, True),
        (599, ApiError, "api_error", 500, True),
    ],
)
def test_error_for_status(
    status: int, cls: type[GatewayError], error_type: str, gateway_status: int, retryable: bool
) -> None:
    error = error_for_status("anthropic", status, "upstream: boom", {})
    assert type(error) is cls
    assert error.error_type == error_type
    assert error.status == gateway_status
    assert error.retryable is retryable
    assert error.message == "upstream: boom"
    assert error.headers == {}
    assert error.body("req_1") == {
        "type": "error",
        "error": {"type": error_type, "message": "upstream: boom"},
        "request_id": "req_1",
    }


@pytest.mark.parametrize("status", [401, 403])
def test_credential_rejection_names_the_provider_and_is_not_retried(status: int) -> None:
    error = error_for_status("azure-east", status, "upstream: invalid x-api-key", {"retry-after": "5"})
    assert type(error) is ApiError
    assert error.status == 500
    assert error.retryable is False
    assert error.headers == {}
    assert error.message == (
        f"provider 'azure-east' rejected the gateway's credentials (HTTP {status}): upstream: invalid x-api-key"
    )


def test_429_forwards_retry_after_in_seconds() -> None:
    error = error_for_status("p", 429, "slow down", {"retry-after-ms": "2500"})
    assert type(error) is RateLimitError
    assert error.headers == {"retry-after": "3"}


def test_429_without_retry_after_has_no_headers() -> None:
    assert error_for_status("p", 429, "slow down", {}).headers == {}


@pytest.mark.parametrize("status", [500, 503, 529, 400])
def test_only_429_forwards_retry_after(status: int) -> None:
    assert error_for_status("p", status, "m", {"retry-after": "7"}).headers == {}


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({}, None),
        ({"retry-after": "7"}, "7"),
        ({"retry-after": "0"}, "0"),
        ({"retry-after": " 12\t"}, "12"),
        ({"retry-after": ""}, None),
        ({"retry-after": "1.5"}, None),  # not whole seconds, and no ms form to fall back on
        ({"retry-after": "-3"}, None),
        ({"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}, None),  # HTTP-date form is not converted
        ({"retry-after-ms": "5000"}, "5"),
        ({"retry-after-ms": "5001"}, "6"),
        ({"retry-after-ms": "999"}, "1"),
        ({"retry-after-ms": "1"}, "1"),
        ({"retry-after-ms": "0"}, "1"),
        ({"retry-after-ms": "-250"}, None),  # nonsense: ignored
        ({"retry-after-ms": "1234.5"}, "2"),
        ({"retry-after-ms": " 3000 "}, "3"),
        ({"retry-after-ms": ""}, None),
        ({"retry-after-ms": "soon"}, None),
        ({"retry-after-ms": "nan"}, None),
        ({"retry-after": "9", "retry-after-ms": "1000"}, "9"),
        ({"retry-after": "later", "retry-after-ms": "1000"}, "1"),
    ],
)
def test_retry_after_seconds(headers: dict[str, str], seconds: str | None) -> None:
    assert retry_after_seconds(headers) == seconds


@pytest.mark.parametrize("value", ["inf", "1e999"])
def test_retry_after_ms_infinity_is_ignored(value: str) -> None:
    assert retry_after_seconds({"retry-after-ms": value}) is None
    assert type(error_for_status("p", 429, "slow down", {"retry-after-ms": value})) is RateLimitError
