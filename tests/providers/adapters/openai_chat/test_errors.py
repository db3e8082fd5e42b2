"""OpenAI-family error answers -> gateway errors (errors.py), with the bodies each vendor documents.

OpenAI: https://platform.openai.com/docs/guides/error-codes (``{"error": {"message", "type", "param", "code"}}``);
Azure OpenAI: the same shape (https://learn.microsoft.com/azure/ai-services/openai/reference); OpenRouter:
``{"error": {"code": <int>, "message", "metadata"}}`` (https://openrouter.ai/docs/api-reference/errors); vLLM:
``{"object": "error", "message", "type", "param", "code"}``; what Claude Code does with each status:
claude-code-wire.md §5.
"""

from __future__ import annotations

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
from providers.adapters.azure_openai.adapter import AzureOpenAIAdapter
from providers.adapters.openai_chat.adapter import OpenAIChatAdapter
from providers.adapters.openai_chat.errors import openai_error
from tests.providers.adapters.openai_chat.helpers import provider


def error(status: int, data: Any, headers: dict[str, str] | None = None) -> GatewayError:
    raw = data if isinstance(data, bytes) else orjson.dumps(data)
    return openai_error(provider(), status, headers or {}, raw)


AZURE_FILTERED = "The response was filtered due to the prompt triggering Azure OpenAI's content management policy."
OPENAI_CONTEXT = {
    "error": {
        "message": "This model's maximum context length is 128000 tokens. However, your messages resulted in 130412 "
        "tokens. Please reduce the length of the messages.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
}
AZURE_CONTEXT = {
    "error": {
        "message": "This model's maximum context length is 8192 tokens, however you requested 9000 tokens.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
}
VLLM_CONTEXT = {
    "object": "error",
    "message": "This model's maximum context length is 32768 tokens. However, you requested 40000 tokens "
    "(39000 in the messages, 1000 in the completion). Please reduce the length of the messages or completion.",
    "type": "BadRequestError",
    "param": None,
    "code": 400,
}
OPENROUTER_CONTEXT = {
    "error": {
        "code": 400,
        "message": "This endpoint's maximum context length is 65536 tokens. However, you requested about 70000 tokens.",
        "metadata": {"provider_name": None},
    }
}


@pytest.mark.parametrize(
    "data",
    [OPENAI_CONTEXT, AZURE_CONTEXT, VLLM_CONTEXT, OPENROUTER_CONTEXT],
    ids=["openai", "azure", "vllm", "openrouter"],
)
def test_context_overflow_reads_as_prompt_is_too_long(data: Any) -> None:
    result = error(400, data)
    assert type(result) is InvalidRequestError
    assert result.status == 400 and not result.retryable
    assert result.message.startswith("prompt is too long: ")
    assert "maximum context length" in result.message


def test_context_length_code_wins_whatever_the_message() -> None:
    result = error(400, {"error": {"message": "too many tokens", "code": "context_length_exceeded"}})
    assert result.message == "prompt is too long: too many tokens"


def test_llama_cpp_context_overflow_reads_as_prompt_is_too_long() -> None:
    # https://github.com/ggml-org/llama.cpp/pull/15780 (server: exceed_context_size_error)
    data = {
        "error": {
            "code": 400,
            "message": "the request exceeds the available context size. try increasing the context size or enable "
            "context shift",
            "type": "exceed_context_size_error",
            "n_prompt_tokens": 14429,
            "n_ctx": 8192,
        }
    }
    assert error(400, data).message.startswith("prompt is too long")


@pytest.mark.parametrize(
    ("status", "data", "cls", "message"),
    [
        (
            400,
            {
                "error": {
                    "message": "Invalid value for 'tool_choice'.",
                    "type": "invalid_request_error",
                    "param": "tool_choice",
                    "code": None,
                }
            },
            InvalidRequestError,
            "upstream: Invalid value for 'tool_choice'.",
        ),
        (
            400,
            {
                "error": {
                    "message": AZURE_FILTERED,
                    "type": None,
                    "param": "prompt",
                    "code": "content_filter",
                    "status": 400,
                }
            },
            InvalidRequestError,
            f"upstream: {AZURE_FILTERED}",
        ),
        (
            404,
            {
                "error": {
                    "message": "The model `gpt-9` does not exist or you do not have access to it.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "model_not_found",
                }
            },
            NotFoundError,
            "upstream: The model `gpt-9` does not exist or you do not have access to it.",
        ),
        (
            404,
            {
                "error": {
                    "code": "DeploymentNotFound",
                    "message": "The API deployment for this resource does not exist.",
                }
            },
            NotFoundError,
            "upstream: The API deployment for this resource does not exist.",
        ),
        (408, {"error": {"code": 408, "message": "Request timed out"}}, TimeoutError_, "upstream: Request timed out"),
        (
            413,
            {"error": {"message": "Request too large", "type": "invalid_request_error"}},
            RequestTooLargeError,
            "upstream: Request too large",
        ),
        (
            500,
            {"error": {"message": "The server had an error while processing your request.", "type": "server_error"}},
            ApiError,
            "upstream: The server had an error while processing your request.",
        ),
        (
            502,
            {"error": {"code": 502, "message": "Provider returned error", "metadata": {"provider_name": "Together"}}},
            ApiError,
            "upstream: Provider returned error",
        ),
        (
            503,
            {"error": {"code": 503, "message": "No available model provider that meets your routing requirements"}},
            ApiError,
            "upstream: No available model provider that meets your routing requirements",
        ),
        (504, {"error": {"message": "Gateway timeout"}}, TimeoutError_, "upstream: Gateway timeout"),
        (
            529,
            {"error": {"message": "Overloaded", "type": "overloaded_error"}},
            OverloadedError,
            "upstream: Overloaded",
        ),
        (
            400,
            VLLM_CONTEXT | {"message": "[{'type': 'missing', 'loc': ('body', 'messages')}]"},
            InvalidRequestError,
            "upstream: [{'type': 'missing', 'loc': ('body', 'messages')}]",
        ),
    ],
)
def test_status_mapping(status: int, data: Any, cls: type[GatewayError], message: str) -> None:
    result = error(status, data)
    assert type(result) is cls
    assert result.message == message


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_provider_credentials_are_a_gateway_problem_not_retried(status: int) -> None:
    data = {
        "error": {
            "message": "Incorrect API key provided: sk-proj-****1234.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    result = error(status, data)
    assert type(result) is ApiError
    assert result.retryable is False
    assert result.message == (
        f"provider 'openai' rejected the gateway's credentials (HTTP {status}): upstream: Incorrect API key provided: "
        "sk-proj-****1234."
    )


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [({"retry-after": "7"}, "7"), ({"retry-after-ms": "1500"}, "2"), ({}, None), ({"retry-after": "soon"}, None)],
)
def test_rate_limit_keeps_retry_after_in_seconds(headers: dict[str, str], retry_after: str | None) -> None:
    data = {
        "error": {
            "message": "Rate limit reached for gpt-4o in organization org-x on tokens per min (TPM).",
            "type": "tokens",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    result = error(429, data, headers)
    assert type(result) is RateLimitError
    assert result.message.startswith("upstream: Rate limit reached")
    assert result.headers == ({"retry-after": retry_after} if retry_after else {})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"error": "model is loading"}, "upstream: model is loading"),
        (
            {"message": "Bad request: stream_options not supported"},
            "upstream: Bad request: stream_options not supported",
        ),
        ({"detail": "Not Found"}, "upstream: Not Found"),
        ({"error": {"type": "invalid_request_error"}}, 'upstream: {"error":{"type":"invalid_request_error"}}'),
        (
            {"detail": [{"loc": ["body"], "msg": "field required"}]},
            'upstream: {"detail":[{"loc":["body"],"msg":"field required"}]}',
        ),
        (["not", "an", "object"], 'upstream: ["not","an","object"]'),
        ({"error": None, "message": None}, 'upstream: {"error":null,"message":null}'),
    ],
)
def test_other_json_shapes(data: Any, message: str) -> None:
    assert error(400, data).message == message


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            b"<html><body><h1>502 Bad Gateway</h1></body></html>",
            "upstream: <html><body><h1>502 Bad Gateway</h1></body></html>",
        ),
        (b"", "upstream: HTTP 502"),
        (b"   \n", "upstream: HTTP 502"),
        (
            b"upstream connect error or disconnect/reset before headers",
            "upstream: upstream connect error or disconnect/reset before headers",
        ),
        (b"\xff\xfe broken", "upstream: \ufffd\ufffd broken"),
    ],
)
def test_non_json_bodies(raw: bytes, message: str) -> None:
    result = error(502, raw)
    assert type(result) is ApiError
    assert result.message == message


def test_long_non_json_body_is_cut() -> None:
    result = error(500, b"x" * 1000)
    assert result.message == "upstream: " + "x" * 300


def test_the_adapters_use_this_mapping() -> None:
    raw = orjson.dumps(OPENAI_CONTEXT)
    for adapter in (OpenAIChatAdapter(), AzureOpenAIAdapter()):
        result = adapter.error_from_response(provider(), 400, {}, raw)
        assert result.message.startswith("prompt is too long")
