"""Shared loopback HTTP plumbing for the non-Anthropic mock upstreams.

Same behaviour as ``anthropic_upstream.py`` (stdlib ThreadingHTTPServer, one
thread per connection, quiet logs, recorded requests, a FIFO of scripted
answers, client disconnects recorded instead of raised), but the wire framing
of a streamed answer is left to the subclass: a ``ScriptedResponse`` carries
ready-made byte ``chunks`` (SSE frames for OpenAI, NDJSON lines for Ollama).
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self, cast

__all__ = [
    "JSON",
    "MockUpstreamBase",
    "RecordedRequest",
    "ScriptedResponse",
    "estimate_tokens",
    "json_type",
    "ndjson_line",
    "new_id",
    "split_text",
    "sse_data",
    "sse_event",
]

JSON = dict[str, Any]
# What a write/read on a socket raises once the peer has gone (BrokenPipeError,
# ConnectionResetError, a socket timeout): all OSError subclasses.
_DISCONNECT_ERRORS = (OSError,)
_POLL = 0.1  # seconds between keepalives / disconnect checks while hanging
SSE_KEEPALIVE = b": keepalive\n\n"  # an SSE comment line, ignored by SSE parsers


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # including the query string, e.g. "/openai/deployments/d/chat/completions?api-version=2024-10-21"
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, or None when absent / not JSON
    raw: bytes
    time: float  # time.monotonic() when the request was fully read

    @property
    def route(self) -> str:
        """The path without the query string."""
        return self.path.split("?", 1)[0]


@dataclass
class ScriptedResponse:
    """One canned answer. ``chunks`` set -> streamed body (written piece by piece), else ``body``."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: JSON | bytes | None = None
    chunks: list[bytes] | None = None
    content_type: str | None = None  # default: application/json, or text/event-stream for chunks
    chunk_delay: float = 0.0  # seconds between chunks
    # After this many chunks, send nothing but keepalives until the client leaves
    # (or the mock stops). On a non-streamed response: never answer at all.
    hang_after: int | None = None
    # Interval of ``keepalive`` writes while hanging; None = stay silent (a true
    # stall, e.g. to test a gateway's idle timeout) and detect the close by polling for EOF.
    hang_keepalive: float | None = _POLL
    keepalive: bytes = SSE_KEEPALIVE  # NDJSON has no comment syntax: use hang_keepalive=None there
    delay: float = 0.0  # seconds to wait before sending the status line


# --- small helpers shared by the mocks ------------------------------------------


def new_id(prefix: str) -> str:
    return f"{prefix}_mock{uuid.uuid4().hex[:20]}"


def split_text(text: str, parts: int = 3) -> list[str]:
    """Cut text into a few pieces so clients see more than one delta."""
    if len(text) <= 1:
        return [text]
    step = max(1, -(-len(text) // parts))
    return [text[i : i + step] for i in range(0, len(text), step)]


def estimate_tokens(size: int) -> int:
    """~4 bytes per token, at least 1."""
    return max(1, size // 4)


def json_type(value: Any, article: bool = False) -> str:
    """The JSON name of a value's type ("string", "object", ...), as servers word type errors."""
    if value is None:
        return "null"
    name = {bool: "boolean", str: "string", dict: "object", list: "array", int: "integer", float: "number"}.get(
        type(value), "value"
    )
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}" if article else name


def sse_data(data: JSON | str) -> bytes:
    """A data-only SSE frame, as OpenAI Chat Completions streams it (``data: {...}`` + blank line)."""
    payload = data if isinstance(data, str) else json.dumps(data)
    return f"data: {payload}\n\n".encode()


def sse_event(event: str, data: JSON) -> bytes:
    """A named SSE frame (``event:`` + ``data:``), as the OpenAI Responses API streams it."""
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def ndjson_line(data: JSON) -> bytes:
    """One newline-delimited JSON object, as Ollama streams /api/chat."""
    return json.dumps(data).encode() + b"\n"


# --- HTTP plumbing ---------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many concurrent gateway connections

    def __init__(self, address: tuple[str, int], mock: MockUpstreamBase) -> None:
        self.mock = mock
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client going away is normal traffic for a gateway test, not a failure.
        exc = sys.exc_info()[1]
        if isinstance(exc, _DISCONNECT_ERRORS):
            return
        self.mock.errors.append(traceback.format_exc())
        traceback.print_exc()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive for responses with Content-Length
    timeout = 60  # idle keep-alive connections go away eventually

    @property
    def mock(self) -> MockUpstreamBase:
        return cast(_Server, self.server).mock

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests print what they need

    def do_HEAD(self) -> None:
        self._handle(send_body=False)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self, send_body: bool = True) -> None:
        raw = self._read_body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = RecordedRequest(self.command, self.path, headers, body, raw, time.monotonic())
        self.mock._record(request)
        response = self.mock._route(request)
        if response.delay and self.mock._stopping.wait(response.delay):
            self.close_connection = True
            return
        if response.chunks is None and response.hang_after is not None:
            self._hold_silently()
        elif response.chunks is not None:
            self._send_stream(response)
        else:
            self._send_plain(response, send_body)

    def _send_plain(self, response: ScriptedResponse, send_body: bool) -> None:
        payload = response.body if isinstance(response.body, bytes) else b""
        if isinstance(response.body, dict):
            payload = json.dumps(response.body).encode()
        self.send_response(response.status)
        headers = {"content-type": response.content_type or "application/json", **response.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if send_body:
            self.wfile.write(payload)

    def _send_stream(self, response: ScriptedResponse) -> None:
        # No Content-Length + Connection: close: the body ends when we close, and
        # every chunk is written straight to the socket (wfile is unbuffered).
        self.close_connection = True
        self.send_response(response.status)
        headers = {
            "content-type": response.content_type or "text/event-stream; charset=utf-8",
            "cache-control": "no-cache",
            **response.headers,
        }
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            for sent, chunk in enumerate(response.chunks or []):
                if response.hang_after is not None and sent >= response.hang_after:
                    break
                if sent and response.chunk_delay and self.mock._stopping.wait(response.chunk_delay):
                    return
                self.wfile.write(chunk)
            if response.hang_after is not None:
                self._hang(response.hang_keepalive, response.keepalive)
        except _DISCONNECT_ERRORS:
            self.mock._record_disconnect()

    def _hang(self, interval: float | None, keepalive: bytes) -> None:
        """Send nothing useful until the client closes; record when it did."""
        last_ping = time.monotonic()
        while not self.mock._stopping.is_set():
            if self._peer_closed():
                raise ConnectionResetError("client closed the connection")
            if interval is not None and time.monotonic() - last_ping >= interval:
                self.wfile.write(keepalive)
                last_ping = time.monotonic()

    def _hold_silently(self) -> None:
        # Non-streamed response with hang_after: never answer, not even the status
        # line; only notice when the client (e.g. a gateway timeout) gives up.
        self.close_connection = True
        try:
            self._hang(None, b"")
        except _DISCONNECT_ERRORS:
            self.mock._record_disconnect()

    def _peer_closed(self) -> bool:
        # Readable with zero bytes pending = EOF from the client. Waits up to _POLL.
        conn = cast(socket.socket, self.connection)
        readable, _, _ = select.select([conn], [], [], _POLL)
        if not readable:
            return False
        try:
            at_eof = conn.recv(1, socket.MSG_PEEK) == b""
        except _DISCONNECT_ERRORS:
            return True
        if not at_eof:
            # The client sent bytes while we hang: the socket stays readable, so
            # wait here instead of spinning on select().
            self.mock._stopping.wait(_POLL)
        return at_eof


class MockUpstreamBase:
    """Real HTTP server on loopback; subclasses implement ``_route``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.requests: list[RecordedRequest] = []
        self.disconnects: list[float] = []
        # Unexpected handler exceptions (mock bugs) and requests a strict server
        # would have rejected (``"400 <route>: <message>"``): tests assert it stays empty.
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._queue: deque[ScriptedResponse] = deque()
        self._stopping = threading.Event()
        self._disconnected = threading.Event()
        self._server = _Server((host, port), self)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:  # shutdown() blocks if serve_forever never ran
            self._server.shutdown()
        self._server.server_close()
        # Kept-alive connections are served by their own threads; cut them so a
        # pooled client cannot keep talking to a stopped mock.
        with self._server.connections_lock:
            open_connections = list(self._server.connections)
        for conn in open_connections:
            with contextlib.suppress(OSError):  # already closed by the client
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def enqueue(self, response: ScriptedResponse) -> None:
        """Use ``response`` verbatim for the next model call (FIFO), skipping validation and the brain."""
        with self._lock:
            self._queue.append(response)

    def wait_for_disconnect(self, timeout: float) -> bool:
        """True once at least one streaming client disconnect was recorded."""
        return self._disconnected.wait(timeout)

    def _route(self, request: RecordedRequest) -> ScriptedResponse:
        raise NotImplementedError

    def _next_response(self) -> ScriptedResponse | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _reject(self, route: str, message: str) -> None:
        """Note a request a strict server would refuse (the gateway under test sent it)."""
        with self._lock:
            self.errors.append(f"400 {route}: {message}")

    def _record_disconnect(self) -> None:
        with self._lock:
            self.disconnects.append(time.monotonic())
        self._disconnected.set()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
