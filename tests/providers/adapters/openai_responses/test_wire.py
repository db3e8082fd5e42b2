"""Responses API wire facts: endpoint URLs (OpenAI, Azure), usage, and error mapping (pure).

URLs: https://platform.openai.com/docs/api-reference/responses/create (``POST /v1/responses``) and
https://learn.microsoft.com/azure/ai-foundry/openai/how-to/responses (``/openai/v1/responses`` and the older
``/openai/responses?api-version=...``). Errors: https://platform.openai.com/docs/guides/error-codes and the
streaming ``error`` event of https://platform.openai.com/docs/api-reference/responses-streaming/error.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.wire.errors import ApiError, InvalidRequestError, NotFoundError, RateLimitError
from providers.adapters.openai_responses.errors import error_event, openai_error
from providers.adapters.openai_responses.wire import responses_url, usage_from_responses

from ._helpers import provider

ROOT = Path(__file__).parents[4]


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("https://api.openai.com", "https://api.openai.com/v1/responses"),
        ("https://api.openai.com/", "https://api.openai.com/v1/responses"),
        ("https://api.openai.com/v1", "https://api.openai.com/v1/responses"),
        ("https://api.openai.com/v1/responses", "https://api.openai.com/v1/responses"),
        ("http://127.0.0.1:8000/gw", "http://127.0.0.1:8000/gw/v1/responses"),
        ("https://openrouter.ai/api", "https://openrouter.ai/api/v1/responses"),
        ("https://res.openai.azure.com", "https://res.openai.azure.com/openai/v1/responses"),
        ("https://res.cognitiveservices.azure.com/", "https://res.cognitiveservices.azure.com/openai/v1/responses"),
        ("https://res.openai.azure.com/openai", "https://res.openai.azure.com/openai/v1/responses"),
        ("https://res.openai.azure.com/openai/v1/", "https://res.openai.azure.com/openai/v1/responses"),
        ("https://res.openai.azure.com/openai/v1/responses", "https://res.openai.azure.com/openai/v1/responses"),
        (
            "https://res.openai.azure.com/openai/responses?api-version=2025-03-01-preview",
            "https://res.openai.azure.com/openai/responses?api-version=2025-03-01-preview",
        ),
        (
            "https://res.openai.azure.com/openai/responses",
            "https://res.openai.azure.com/openai/responses?api-version=2025-04-01-preview",
        ),
    ],
)
def test_responses_url(base_url: str, expected: str) -> None:
    assert responses_url(base_url) == expected


def test_azure_api_version_option_fills_a_missing_api_version_only() -> None:
    base = "https://res.openai.azure.com/openai/responses"
    assert responses_url(base, api_version="2025-05-01") == base + "?api-version=2025-05-01"
    assert responses_url(base + "?api-version=x", api_version="2025-05-01") == base + "?api-version=x"
    # The v1 route takes no api-version.
    assert responses_url("https://res.openai.azure.com/openai/v1", api_version="2025-05-01").endswith("/v1/responses")


def test_usage_subtracts_cached_tokens() -> None:
    usage = {
        "input_tokens": 1200,
        "input_tokens_details": {"cached_tokens": 1024},
        "output_tokens": 272,
        "output_tokens_details": {"reasoning_tokens": 256},
        "total_tokens": 1472,
    }
    assert usage_from_responses(usage) == {"input_tokens": 176, "output_tokens": 272, "cache_read_input_tokens": 1024}


def test_usage_without_details_or_absent() -> None:
    assert usage_from_responses({"input_tokens": 5, "output_tokens": 2}) == {
        "input_tokens": 5,
        "output_tokens": 2,
        "cache_read_input_tokens": 0,
    }
    assert usage_from_responses({}) == {"input_tokens": 0, "output_tokens": 0, "cache_read_input_tokens": 0}
    assert usage_from_responses(None) is None


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        # The reference's `error` event example, and its response.failed error object.
        (
            {"type": "error", "code": "ERR_SOMETHING", "message": "Something went wrong", "param": None},
            ("api_error", "upstream: Something went wrong"),
        ),
        (
            {"code": "server_error", "message": "The model failed to generate a response."},
            ("api_error", "upstream: The model failed to generate a response."),
        ),
        ({"code": "rate_limit_exceeded", "message": "slow down"}, ("rate_limit_error", "upstream: slow down")),
        ({"code": "server_is_overloaded", "message": "busy"}, ("overloaded_error", "upstream: busy")),
        ({"code": "vector_store_timeout", "message": "late"}, ("timeout_error", "upstream: late")),
        ({"code": "invalid_prompt", "message": "bad"}, ("invalid_request_error", "upstream: bad")),
        ({"code": "image_too_large", "message": "big"}, ("invalid_request_error", "upstream: big")),
        (
            {"code": "context_length_exceeded", "message": "too many tokens"},
            ("invalid_request_error", "prompt is too long: too many tokens"),
        ),
        # Nested form some compatible servers send, a type instead of a code, and bare values.
        (
            {"type": "error", "error": {"type": "rate_limit_exceeded", "message": "later"}},
            ("rate_limit_error", "upstream: later"),
        ),
        ({"code": "server_error"}, ("api_error", "upstream: server_error")),
        ({}, ("api_error", "upstream: upstream error")),
        (None, ("api_error", "upstream: upstream error")),
        ("boom", ("api_error", "upstream: boom")),
    ],
)
def test_error_event(error: object, expected: tuple[str, str]) -> None:
    assert error_event(error) == expected


def test_http_error_bodies_map_like_the_chat_adapter() -> None:
    p = provider()
    body = (
        b'{"error": {"message": "Rate limit reached", "type": "requests", "param": null,'
        b' "code": "rate_limit_exceeded"}}'
    )
    error = openai_error(p, 429, {"retry-after": "7"}, body)
    assert isinstance(error, RateLimitError)
    assert error.headers == {"retry-after": "7"}
    too_long = (
        b'{"error": {"message": "Your input exceeds the context window of this model.",'
        b' "type": "invalid_request_error", "param": "input", "code": "context_length_exceeded"}}'
    )
    assert isinstance(openai_error(p, 400, {}, too_long), InvalidRequestError)
    assert str(openai_error(p, 400, {}, too_long)).startswith("prompt is too long")
    assert isinstance(openai_error(p, 404, {}, b'{"error": {"message": "The model does not exist"}}'), NotFoundError)
    assert isinstance(openai_error(p, 500, {}, b"<html>oops</html>"), ApiError)


def test_translation_modules_are_pure() -> None:
    """No Django, httpx, Channels or Celery behind the translation (DESIGN.md; the import-linter contract)."""
    modules = ", ".join(
        f"providers.adapters.openai_responses.{m}" for m in ("wire", "items", "translate", "stream", "errors")
    )
    code = f"import sys, {modules}; print(sorted({{m.split('.')[0] for m in sys.modules}}))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    loaded = set(ast.literal_eval(result.stdout))
    assert not loaded & {"django", "httpx", "httpx2", "channels", "celery", "asgiref"}
