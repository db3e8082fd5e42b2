"""Daphne as `lynkr serve` runs it (lynkr_site/serve_twisted.py): a Claude-Code-sized body sent with its head in one
write reaches the upstream whole, and a WebSocket upgrade (autobahn imported only then) is refused without harming
the server."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import LynkrServer
from tests.mocks.anthropic_upstream import MockAnthropicUpstream, ScriptedResponse, message_json

pytestmark = pytest.mark.e2e


def _exchange(port: int, raw: bytes) -> bytes:
    """Send ``raw`` in one write: head and body arrive together, as from Claude Code. Read one response: to its
    Content-Length, its last chunk, or the close."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
            head, found, rest = received.partition(b"\r\n\r\n")
            lines = head.lower().split(b"\r\n")
            lengths = [line.split(b":", 1)[1] for line in lines if line.startswith(b"content-length:")]
            if found and lengths and len(rest) >= int(lengths[0]):
                break
            if found and b"transfer-encoding: chunked" in lines and rest.endswith(b"\r\n0\r\n\r\n"):
                break
        return received


def test_a_large_turn_in_one_write_and_a_websocket_upgrade(tmp_path: Path) -> None:
    with MockAnthropicUpstream() as upstream:
        upstream.enqueue(ScriptedResponse(body=message_json("up", [{"type": "text", "text": "ok"}], "end_turn", 10)))
        upstream.enqueue(ScriptedResponse(body=message_json("up", [{"type": "text", "text": "after"}], "end_turn", 3)))
        env = {"MODEL_PROVIDER": "azure-anthropic", "AZURE_ANTHROPIC_ENDPOINT": upstream.url, "LYNKR_SERVER": "daphne"}
        server = LynkrServer(data_dir=tmp_path / "lynkr", env_extra=env).start()
        try:
            port = int(server.url.rsplit(":", 1)[1])
            # Past one 64 KB read (the head is parsed apart from the body behind it) and past the 100 000 bytes from
            # which Twisted would spool a body to disk.
            text = "x" * 150_000
            body = json.dumps({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": text}]}).encode()
            head = (
                f"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"X-Api-Key: {server.api_key}\r\nAnthropic-Version: 2023-06-01\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            answer = _exchange(port, head + body)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:500]
            assert b'"text":"ok"' in answer.replace(b" ", b"")
            sent = upstream.messages_requests[0].body
            assert sent["messages"][0]["content"] in (text, [{"type": "text", "text": text}])

            upgrade = _exchange(port, b"GET /v1/socket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                                      b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                      b"Sec-WebSocket-Version: 13\r\n\r\n")  # fmt: skip
            assert upgrade.startswith(b"HTTP/1.1 500"), upgrade[:300]  # no WebSocket route: Daphne's own refusal
            assert "No application configured for scope type 'websocket'" in server.log()

            hello = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
            key = {"x-api-key": server.api_key}
            after = httpx.post(f"{server.url}/v1/messages", json=hello, headers=key, timeout=30)
            assert after.status_code == 200 and after.json()["content"][0]["text"] == "after"
        finally:
            server.stop()
