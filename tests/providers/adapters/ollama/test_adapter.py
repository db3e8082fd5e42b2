"""The adapter behind the registry, and Ollama error answers mapped to gateway errors.

Error bodies per https://github.com/ollama/ollama/blob/main/docs/api/errors.mdx (``{"error": "..."}``).
"""

from __future__ import annotations

import re

import orjson
import pytest

from gateway.sse import Accumulator
from gateway.wire.errors import ApiError, InvalidRequestError, NotFoundError, RateLimitError
from providers.adapters import adapter_for
from providers.adapters.base import InboundContext
from providers.adapters.common.signatures import signature_read
from providers.adapters.ollama.adapter import OllamaAdapter
from providers.adapters.ollama.stream import OllamaJsonDecoder, OllamaNdjsonDecoder
from tests.providers.adapters.ollama.support import FIXTURES, provider, route

KEY = b"signing-secret"
INBOUND = InboundContext(request_id="req_9", input_estimate=12, signing_key=KEY)
BODY = {"model": "claude-opus-4-8", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


def test_registered_under_its_kind() -> None:
    adapter = adapter_for("ollama")
    assert isinstance(adapter, OllamaAdapter) and adapter.kind == "ollama"


def test_build_request() -> None:
    upstream = OllamaAdapter().build_request(route(), BODY, INBOUND)
    assert upstream.url == "http://localhost:11434/api/chat"
    assert orjson.loads(upstream.body)["model"] == "qwen3"


def test_stream_decoder_by_content_type_signs_thinking_as_ours() -> None:
    adapter = OllamaAdapter()
    assert isinstance(adapter.stream_decoder(route(), BODY, INBOUND, "application/json"), OllamaJsonDecoder)
    decoder = adapter.stream_decoder(route(), BODY, INBOUND, "application/x-ndjson")
    assert isinstance(decoder, OllamaNdjsonDecoder)
    events = decoder.feed((FIXTURES / "stream_thinking.ndjson").read_bytes()) + decoder.flush()
    accumulator = Accumulator()
    for event in events:
        accumulator.feed(event)
    result = accumulator.result()
    assert re.fullmatch(r"msg_[0-9a-f]{24}", result["id"])
    assert result["model"] == "claude-opus-4-8"
    assert events[0]["message"]["usage"]["input_tokens"] == 12  # the estimate until Ollama reports its count
    assert signature_read(result["content"][0]["signature"], KEY) == {"k": "ollama"}


def test_model_not_found_is_a_clear_404() -> None:
    body = b'{"error":"model \\"qwen9\\" not found, try pulling it first"}'
    error = OllamaAdapter().error_from_response(provider(), 404, {}, body)
    assert isinstance(error, NotFoundError)
    assert "provider 'ollama' (Ollama at http://localhost:11434)" in error.message
    assert 'model "qwen9" not found' in error.message and "ollama pull" in error.message


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind", "message"),
    [
        (
            400,
            b'{"error":"qwen9 does not support tools"}',
            {},
            InvalidRequestError,
            "upstream: qwen9 does not support tools",
        ),
        (429, b'{"error":"too many requests"}', {"retry-after": "7"}, RateLimitError, "upstream: too many requests"),
        (500, b"Internal Server Error\n", {}, ApiError, "upstream: Internal Server Error"),
        (502, b"", {}, ApiError, "upstream: HTTP 502"),
        (500, b'{"error": ""}', {}, ApiError, 'upstream: {"error": ""}'),
        (503, b'{"message": "x"}', {}, ApiError, 'upstream: {"message": "x"}'),
    ],
)
def test_errors(status: int, body: bytes, headers: dict[str, str], kind: type, message: str) -> None:
    error = OllamaAdapter().error_from_response(provider(), status, headers, body)
    assert type(error) is kind and error.message == message
    if status == 429:
        assert error.headers == {"retry-after": "7"}


def test_credential_rejection_is_the_gateways_problem() -> None:
    error = OllamaAdapter().error_from_response(provider(), 401, {}, b'{"error":"unauthorized"}')
    assert isinstance(error, ApiError) and error.retryable is False
    assert "rejected the gateway's credentials" in error.message
