"""A client that goes away mid-request cancels the upstream request within 1 s (under Daphne, for real)."""

from __future__ import annotations

import socket
import time

import httpx
import orjson
import pytest

from tests.e2e.server import LynkrServer
from tests.mocks.anthropic_upstream import MockAnthropicUpstream

pytestmark = pytest.mark.e2e


def _wait_new_disconnect(upstream: MockAnthropicUpstream, before: int, timeout: float) -> float | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(upstream.disconnects) > before:
            return upstream.disconnects[before]
        time.sleep(0.01)
    return None


def test_streaming_disconnect_cancels_upstream(gateway: LynkrServer, module_upstream: MockAnthropicUpstream) -> None:
    before = len(module_upstream.disconnects)
    with (
        httpx.Client(timeout=30) as http,
        http.stream(
            "POST",
            f"{gateway.url}/v1/messages?beta=true",
            headers={"x-api-key": gateway.api_key},
            json={"model": "m", "max_tokens": 50, "stream": True, "messages": [{"role": "user", "content": "__slow"}]},
        ) as response,
    ):
        assert response.status_code == 200
        lines = response.iter_lines()
        seen = [next(lines) for _ in range(3)]
        assert seen[0] == "event: message_start"
        closed_at = time.monotonic()
    disconnected_at = _wait_new_disconnect(module_upstream, before, timeout=3.0)
    assert disconnected_at is not None, "the upstream request was not cancelled"
    assert disconnected_at - closed_at < 1.0


def test_non_streaming_disconnect_cancels_upstream(
    gateway: LynkrServer, module_upstream: MockAnthropicUpstream
) -> None:
    before = len(module_upstream.disconnects)
    requests_before = len(module_upstream.messages_requests)
    body = orjson.dumps({"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": "__slow"}]})
    request = (
        f"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {gateway.api_key}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
        sock.sendall(request)
        # Wait until the upstream has the request, then hang up without reading an answer.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(module_upstream.messages_requests) == requests_before:
            time.sleep(0.01)
        time.sleep(0.3)
    closed_at = time.monotonic()
    disconnected_at = _wait_new_disconnect(module_upstream, before, timeout=3.0)
    assert disconnected_at is not None, "the upstream request was not cancelled"
    assert disconnected_at - closed_at < 1.0
