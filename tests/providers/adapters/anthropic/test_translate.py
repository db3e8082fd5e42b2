"""Requests to Anthropic-format upstreams, count_tokens, and upstream errors mapped to gateway errors (pure).

Messages API: https://docs.anthropic.com/en/api/messages; errors: https://docs.anthropic.com/en/api/errors.
What Claude Code sends: shared/reference/claude-code-wire.md §2-§3 and §8.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
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
from providers.adapters.anthropic.translate import (
    build_count_request,
    build_request,
    error_from_response,
    parse_count_response,
)
from providers.adapters.base import InboundContext
from providers.routing import ProviderConfig, Route

PROVIDER_KEY = "sk-ant-api03-provider-secret"
CLIENT_KEY = "sk-lynkr-abcd1234_" + "S" * 40


def _provider(**changes: Any) -> ProviderConfig:
    fields: dict[str, Any] = {
        "id": 1,
        "name": "anthropic",
        "kind": "anthropic",
        "base_url": "https://api.anthropic.com",
        "credential": PROVIDER_KEY,
        "connect_timeout": 3.0,
        "read_timeout": 120.0,
    }
    return ProviderConfig(**{**fields, **changes})


def _route(provider: ProviderConfig | None = None, upstream_model: str = "claude-opus-4-8") -> Route:
    return Route(provider or _provider(), upstream_model, "claude-opus-5-5")


CLAUDE_CODE_BETA = (
    "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,"
    "per-turn-control-2026-07-01,mid-conversation-tool-changes-2026-07-01,thinking-token-count-2026-05-13,"
    "advanced-tool-use-2025-11-20,effort-2025-11-24"
)
INBOUND = InboundContext(anthropic_version="2023-06-01", anthropic_beta=CLAUDE_CODE_BETA, request_id="req_42")

# A Claude Code 2.1.332 turn-1 body, shortened (claude-code-wire.md §3 and §8): top-level fields the gateway does
# not model (context_management, output_config), a role:"system" message with its own output_config, and a
# deferred tool entry.
BODY: dict[str, Any] = {
    "model": "claude-opus-5-5",
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "<system-reminder>currentDate 2026-11-26</system-reminder>"},
                {
                    "type": "text",
                    "text": "create a file hello.txt containing hi",
                    "cache_control": {"type": "ephemeral"},
                },
            ],
        },
        {
            "role": "system",
            "content": "Available agent types for the Agent tool: general-purpose",
            "output_config": {"effort": "medium"},
        },
    ],
    "system": [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.332.abc; cc_entrypoint=sdk-cli;"},
        {"type": "text", "text": "You are a Claude agent.", "cache_control": {"type": "ephemeral"}},
    ],
    "tools": [
        {
            "name": "ToolSearch",
            "description": "Load tool schemas on demand",
            "input_schema": {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "properties": {"query": {"type": "string"}},
                "required": ["query"],
                "additionalProperties": False,
            },
        },
        {"name": "NotebookEdit", "defer_loading": True},
    ],
    "metadata": {"user_id": '{"device_id":"ab12","account_uuid":"","session_id":"0f0e"}'},
    "max_tokens": 128000,
    "thinking": {"type": "adaptive", "display": "omitted"},
    "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    "output_config": {"effort": "medium"},
    "stream": True,
}


def _headers(request: Any) -> dict[str, str]:
    names = [name for name, _ in request.headers]
    assert len(names) == len(set(names)), names  # no header twice
    return dict(request.headers)


# --- build_request --------------------------------------------------------------------------------------------


def test_body_passes_through_untouched_except_model_and_stream() -> None:
    body = copy.deepcopy(BODY)
    request = build_request(_route(), body, INBOUND)
    assert body == BODY  # the caller's dict is not modified
    sent = orjson.loads(request.body)
    assert sent == {**BODY, "model": "claude-opus-4-8", "stream": True}
    assert list(sent) == list(BODY)  # key order kept too
    assert sent["messages"][1] == BODY["messages"][1]  # role:"system" with its own output_config
    assert sent["tools"][1] == {"name": "NotebookEdit", "defer_loading": True}


@pytest.mark.parametrize("stream", [False, None], ids=["stream false", "no stream field"])
def test_stream_is_always_true_upstream(stream: bool | None) -> None:
    body = {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}
    if stream is not None:
        body["stream"] = stream
    sent = orjson.loads(build_request(_route(), body, InboundContext()).body)
    assert sent["stream"] is True
    assert sent["model"] == "claude-opus-4-8"


def test_request_line_and_timeouts() -> None:
    request = build_request(_route(), BODY, INBOUND)
    assert request.method == "POST"
    assert request.url == "https://api.anthropic.com/v1/messages"
    assert request.connect_timeout == 3.0
    assert request.read_timeout == 120.0


def test_headers_with_x_api_key_auth() -> None:
    assert _headers(build_request(_route(), BODY, INBOUND)) == {
        "content-type": "application/json",
        "accept": "text/event-stream",
        "anthropic-version": "2023-06-01",
        "anthropic-beta": CLAUDE_CODE_BETA,
        "x-api-key": PROVIDER_KEY,
        "x-request-id": "req_42",
    }


def test_headers_with_bearer_auth() -> None:
    headers = _headers(build_request(_route(_provider(auth_style="bearer")), BODY, INBOUND))
    assert headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert "x-api-key" not in headers


def test_no_auth_header_without_a_provider_credential() -> None:
    headers = _headers(build_request(_route(_provider(credential="")), BODY, InboundContext()))
    assert "x-api-key" not in headers
    assert "authorization" not in headers


def test_anthropic_version_from_the_client_wins() -> None:
    inbound = InboundContext(anthropic_version="2099-01-01")
    headers = _headers(build_request(_route(_provider(api_version="2023-01-01")), BODY, inbound))
    assert headers["anthropic-version"] == "2099-01-01"


def test_anthropic_version_falls_back_to_the_provider_then_the_default() -> None:
    headers = _headers(build_request(_route(_provider(api_version="2023-01-01")), BODY, InboundContext()))
    assert headers["anthropic-version"] == "2023-01-01"
    headers = _headers(build_request(_route(_provider(api_version="")), BODY, InboundContext()))
    assert headers["anthropic-version"] == "2023-06-01"


def test_anthropic_beta_and_request_id_only_when_sent() -> None:
    headers = _headers(build_request(_route(), BODY, InboundContext()))
    assert "anthropic-beta" not in headers
    assert "x-request-id" not in headers


def test_the_clients_key_never_reaches_the_upstream() -> None:
    for provider in (_provider(), _provider(auth_style="bearer"), _provider(credential="")):
        for request in (
            build_request(_route(provider), BODY, INBOUND),
            build_count_request(_route(provider), BODY, INBOUND),
        ):
            assert CLIENT_KEY not in repr(request.headers)
            assert b"sk-lynkr" not in request.body
            assert {name for name, _ in request.headers} <= {
                "content-type",
                "accept",
                "anthropic-version",
                "anthropic-beta",
                "x-api-key",
                "authorization",
                "x-request-id",
            }


def test_reprs_do_not_show_the_provider_credential() -> None:
    request = build_request(_route(), BODY, INBOUND)
    assert PROVIDER_KEY not in repr(request)
    assert PROVIDER_KEY not in repr(_provider())


# --- count_tokens ---------------------------------------------------------------------------------------------


def test_count_request() -> None:
    # Claude Code's count_tokens body: {model, messages, tools} only (claude-code-wire.md §3).
    body = {"model": "claude-opus-5-5", "messages": [{"role": "user", "content": "foo"}], "tools": BODY["tools"]}
    request = build_count_request(_route(_provider(base_url="https://gw.example/v1/")), body, INBOUND)
    assert request.method == "POST"
    assert request.url == "https://gw.example/v1/messages/count_tokens"
    assert orjson.loads(request.body) == {**body, "model": "claude-opus-4-8"}  # no stream field added
    assert body["model"] == "claude-opus-5-5"
    headers = _headers(request)
    assert headers["accept"] == "application/json"
    assert headers["content-type"] == "application/json"
    assert headers["x-api-key"] == PROVIDER_KEY
    assert headers["anthropic-beta"] == CLAUDE_CODE_BETA
    assert (request.connect_timeout, request.read_timeout) == (3.0, 120.0)


@pytest.mark.parametrize(
    ("body", "tokens"),
    [
        (b'{"input_tokens": 2095}', 2095),
        (b'{"input_tokens": 0, "context_management": null}', 0),
        (b'{"input_tokens":"7"}', 7),
    ],
)
def test_parse_count_response(body: bytes, tokens: int) -> None:
    assert parse_count_response(body) == tokens


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"<html>502 Bad Gateway</html>",
        b"{}",
        b'{"tokens": 5}',
        b"[]",
        b"null",
        b"5",
        b'"input_tokens"',
        b'{"input_tokens": null}',
        b'{"input_tokens": "many"}',
        b'{"input_tokens": [1]}',
        b"\xff\xfe",
    ],
)
def test_parse_count_response_rejects_other_bodies(body: bytes) -> None:
    with pytest.raises(ApiError, match="upstream count_tokens answer is not"):
        parse_count_response(body)


# --- error_from_response --------------------------------------------------------------------------------------


def _anthropic_error(error_type: str, message: str) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": error_type, "message": message}, "request_id": "req_1"})


@pytest.mark.parametrize(
    ("status", "error_type", "cls", "gateway_status", "retryable"),
    [
        (400, "invalid_request_error", InvalidRequestError, 400, False),
        (404, "not_found_error", NotFoundError, 404, False),
        (413, "request_too_large", RequestTooLargeError, 413, False),
        (408, "timeout_error", TimeoutError_, 504, True),
        (504, "timeout_error", TimeoutError_, 504, True),
        (429, "rate_limit_error", RateLimitError, 429, True),
        (500, "api_error", ApiError, 500, True),
        (502, "api_error", ApiError, 500, True),
        (503, "api_error", ApiError, 500, True),
        (529, "overloaded_error", OverloadedError, 529, True),
        (409, "api_error", ApiError, 409, True),
    ],
)
def test_error_from_response_maps_the_status_and_keeps_the_upstream_message(
    status: int, error_type: str, cls: type[GatewayError], gateway_status: int, retryable: bool
) -> None:
    error = error_from_response(_provider(), status, {}, _anthropic_error(error_type, "the upstream said so"))
    assert type(error) is cls
    assert error.message == "upstream: the upstream said so"
    assert error.status == gateway_status
    assert error.retryable is retryable
    assert error.headers == {}


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_provider_credentials_are_a_gateway_problem_not_the_clients(status: int) -> None:
    error = error_from_response(
        _provider(name="azure-east"), status, {}, _anthropic_error("authentication_error", "invalid x-api-key")
    )
    # Not an authentication_error: the client's own key was fine (claude-code-wire.md §5 and §7.8).
    assert type(error) is ApiError
    assert error.error_type == "api_error"
    assert error.status == 500
    assert error.retryable is False
    assert (
        error.message
        == f"provider 'azure-east' rejected the gateway's credentials (HTTP {status}): upstream: invalid x-api-key"
    )


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [
        ({"retry-after": "7"}, "7"),
        ({"retry-after": " 60 "}, "60"),
        ({"retry-after-ms": "5000"}, "5"),
        ({"retry-after-ms": "1500"}, "2"),  # rounded up: never retry earlier than asked
        ({"retry-after-ms": "10.5"}, "1"),  # at least one second
        ({"retry-after-ms": "0"}, "1"),
        ({"retry-after": "7", "retry-after-ms": "60000"}, "7"),  # the seconds form wins
        ({"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT", "retry-after-ms": "3000"}, "3"),
    ],
)
def test_429_carries_retry_after_in_seconds(headers: dict[str, str], retry_after: str) -> None:
    error = error_from_response(_provider(), 429, headers, _anthropic_error("rate_limit_error", "slow down"))
    assert isinstance(error, RateLimitError)
    assert error.headers == {"retry-after": retry_after}


@pytest.mark.parametrize(
    "headers",
    [{}, {"retry-after": ""}, {"retry-after": "soon"}, {"retry-after-ms": "soon"}, {"retry-after-ms": ""}],
)
def test_429_without_a_usable_retry_after(headers: dict[str, str]) -> None:
    error = error_from_response(_provider(), 429, headers, _anthropic_error("rate_limit_error", "slow down"))
    assert isinstance(error, RateLimitError)
    assert error.headers == {}


def test_retry_after_is_only_forwarded_on_429() -> None:
    error = error_from_response(
        _provider(), 529, {"retry-after": "7"}, _anthropic_error("overloaded_error", "Overloaded")
    )
    assert isinstance(error, OverloadedError)
    assert error.headers == {}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html><body>502 Bad Gateway</body></html>\n", "upstream: <html><body>502 Bad Gateway</body></html>"),
        (b"  upstream connect error  ", "upstream: upstream connect error"),
        (b"", "upstream: HTTP 503"),
        (b"   \n", "upstream: HTTP 503"),
        (b"[1, 2]", "upstream: [1, 2]"),  # JSON, but not an error object
        (b'{"error": "plain string"}', 'upstream: {"error": "plain string"}'),
        (b'{"error": {"type": "api_error"}}', 'upstream: {"error": {"type": "api_error"}}'),  # no message
        (
            b'{"error": {"type": "api_error", "message": ""}}',
            'upstream: {"error": {"type": "api_error", "message": ""}}',
        ),
        (b"\xff\xfe broken", "upstream: \ufffd\ufffd broken"),
    ],
)
def test_error_from_response_without_an_anthropic_error_body(body: bytes, message: str) -> None:
    error = error_from_response(_provider(), 503, {}, body)
    assert type(error) is ApiError
    assert error.message == message


def test_error_from_response_truncates_a_long_non_json_body() -> None:
    error = error_from_response(_provider(), 500, {}, b"x" * 10_000)
    assert error.message == "upstream: " + "x" * 300


def test_error_from_response_keeps_a_non_string_message_as_text() -> None:
    error = error_from_response(_provider(), 400, {}, b'{"error": {"message": 42}}')
    assert error.message == "upstream: 42"
