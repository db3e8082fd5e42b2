"""Shared test helpers for the Ollama adapter tests."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import MappingProxyType
from typing import Any

from providers.adapters.common.builder import Event
from providers.adapters.ollama.stream import decoder_for
from providers.routing import ProviderConfig, Route

FIXTURES = Path(__file__).parent / "fixtures"
SIGNATURE = "sig-test"


def provider(**changes: Any) -> ProviderConfig:
    fields: dict[str, Any] = {
        "id": 7,
        "name": "ollama",
        "kind": "ollama",
        "base_url": "http://localhost:11434",
        "credential": "",
        "auth_style": "none",
        "connect_timeout": 3.0,
        "read_timeout": 120.0,
    }
    options = changes.pop("options", None)
    if options is not None:
        fields["options"] = MappingProxyType(options)
    return ProviderConfig(**{**fields, **changes})


def route(config: ProviderConfig | None = None, upstream_model: str = "qwen3") -> Route:
    return Route(config or provider(), upstream_model, "claude-opus-4-8")


def counter_ids() -> Callable[[], str]:
    numbers = itertools.count(1)
    return lambda: f"toolu_{next(numbers):02d}"


def decode(chunks: Iterable[bytes], content_type: str = "application/x-ndjson", input_tokens: int = 5) -> list[Event]:
    decoder = decoder_for(
        content_type,
        message_id="msg_test",
        model="claude-opus-4-8",
        input_tokens=input_tokens,
        signer=lambda _text: SIGNATURE,
        mint_id=counter_ids(),
    )
    events: list[Event] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events + decoder.flush()


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


class LoopbackServer:
    """A tiny HTTP server on 127.0.0.1 answering from ``routes``: (method, path) -> (status, content type, body).
    It records each request as (method, path, headers, body)."""

    def __init__(self, routes: dict[tuple[str, str], tuple[int, str, bytes]]) -> None:
        self.routes = routes
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                server.requests.append((self.command, path, {k.lower(): v for k, v in self.headers.items()}, body))
                status, content_type, payload = server.routes.get((self.command, path), (404, "text/plain", b"nope"))
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
