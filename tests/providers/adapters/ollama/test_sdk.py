"""The official anthropic SDK parses the Anthropic SSE we make of Ollama streams (served from loopback)."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from gateway.sse import Accumulator, encode
from tests.providers.adapters.ollama.support import FIXTURES, LoopbackServer, decode


def _serve_and_stream(events: list[dict[str, Any]]) -> anthropic.types.Message:
    sse = b"".join(encode(event) for event in events)
    with (
        LoopbackServer({("POST", "/v1/messages"): (200, "text/event-stream", sse)}) as server,
        anthropic.DefaultHttpxClient(trust_env=False) as http,  # loopback only, whatever proxy the env names
    ):
        sdk = anthropic.Anthropic(base_url=server.url, api_key="x", max_retries=0, http_client=http)
        with sdk.messages.stream(
            model="claude-opus-4-8", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            return stream.get_final_message()


@pytest.mark.parametrize("name", ["stream_text.ndjson", "stream_tools.ndjson", "stream_thinking.ndjson"])
def test_sdk_final_message_equals_our_fold(name: str) -> None:
    events = decode([(FIXTURES / name).read_bytes()])
    accumulator = Accumulator()
    for event in events:
        accumulator.feed(event)
    expected = accumulator.result()
    final = _serve_and_stream(events)
    assert final.id == expected["id"] and final.model == expected["model"]
    assert final.stop_reason == expected["stop_reason"]
    assert [block.model_dump(exclude_none=True) for block in final.content] == expected["content"]
    assert (final.usage.input_tokens, final.usage.output_tokens) == (
        expected["usage"]["input_tokens"],
        expected["usage"]["output_tokens"],
    )


def test_sdk_raises_on_a_mid_stream_error() -> None:
    events = decode([(FIXTURES / "stream_error.ndjson").read_bytes()])
    with pytest.raises(anthropic.APIError, match="an error was encountered while running the model"):
        _serve_and_stream(events)
