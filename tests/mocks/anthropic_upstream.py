"""Scripted mock of the Anthropic Messages API, served over real HTTP on loopback.

Stdlib only, so gateway tests can run it in-process next to the gateway and
point the gateway's upstream base URL at ``mock.url``.

Wire format follows https://docs.anthropic.com/en/api/messages-streaming
(``event: <type>`` + ``data: <json>`` + blank line) and
https://docs.anthropic.com/en/api/messages (non-streaming Message JSON);
what the real Claude Code CLI sends is in shared/reference/claude-code-wire.md.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import re
import select
import socket
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self, cast

__all__ = [
    "MockAnthropicUpstream",
    "RecordedRequest",
    "ScriptedResponse",
    "error_response",
    "message_json",
    "stream_events",
]

JSON = dict[str, Any]
Event = tuple[str, JSON]
# What a write/read on a socket raises once the peer has gone (BrokenPipeError,
# ConnectionResetError, a socket timeout): all OSError subclasses.
_DISCONNECT_ERRORS = (OSError,)
_CREATE_FILE = re.compile(r"create a file (\S+) containing (.+)", re.IGNORECASE)
_CWD = re.compile(r"Primary working directory: (.+)")
_ERROR_CONTROL = re.compile(r"__error:(\d{3}):(\w+)")
_POLL = 0.1  # seconds between keepalives / disconnect checks while hanging


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # including the query string, e.g. "/v1/messages?beta=true"
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, or None when absent / not JSON
    raw: bytes
    time: float  # time.monotonic() when the request was fully read


@dataclass
class ScriptedResponse:
    """One canned answer. ``events`` set -> SSE stream, otherwise ``body``."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: JSON | bytes | None = None
    events: list[Event] | None = None
    chunk_delay: float = 0.0  # seconds between SSE events
    # After this many events, send nothing but keepalives until the client leaves
    # (or the mock stops). On a non-SSE response: never answer at all.
    hang_after: int | None = None
    # Interval of ": keepalive" SSE comments while hanging. They make a closed
    # client show up as a write error; None = stay silent (a true stall, e.g. to
    # test a gateway's idle timeout) and detect the close by polling for EOF.
    hang_keepalive: float | None = _POLL
    delay: float = 0.0  # seconds to wait before sending the status line


# --- builders for canned answers -------------------------------------------------


def _new_id(prefix: str) -> str:
    return f"{prefix}_mock{uuid.uuid4().hex[:20]}"


def _usage(input_tokens: int, output_tokens: int) -> JSON:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def _output_tokens(content: list[JSON]) -> int:
    size = sum(len(json.dumps(block)) for block in content)
    return max(1, size // 4)


def error_response(status: int, error_type: str, message: str | None = None) -> ScriptedResponse:
    """An Anthropic error body: https://docs.anthropic.com/en/api/errors."""
    headers = {"retry-after": "7"} if status == 429 else {}
    body = {
        "type": "error",
        "error": {"type": error_type, "message": message or f"mock {error_type}"},
    }
    return ScriptedResponse(status=status, headers=headers, body=body)


def message_json(model: str, content: list[JSON], stop_reason: str, input_tokens: int) -> JSON:
    """A complete non-streaming Message object."""
    return {
        "id": _new_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": _usage(input_tokens, _output_tokens(content)),
    }


def _split(text: str, parts: int = 3) -> list[str]:
    """Cut text into a few pieces so clients see more than one delta."""
    if len(text) <= 1:
        return [text]
    step = max(1, -(-len(text) // parts))
    return [text[i : i + step] for i in range(0, len(text), step)]


def _block_events(index: int, block: JSON) -> Iterator[Event]:
    if block["type"] == "tool_use":
        start = {
            "type": "tool_use",
            "id": block["id"],
            "name": block["name"],
            "input": {},
        }
        pieces = _split(json.dumps(block["input"]))
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces]
    else:
        start = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": p} for p in _split(block["text"])]
    yield (
        "content_block_start",
        {"type": "content_block_start", "index": index, "content_block": start},
    )
    if index == 0:
        # The documented example sends ping right after the first block start.
        yield "ping", {"type": "ping"}
    for delta in deltas:
        yield (
            "content_block_delta",
            {"type": "content_block_delta", "index": index, "delta": delta},
        )
    yield "content_block_stop", {"type": "content_block_stop", "index": index}


def stream_events(model: str, content: list[JSON], stop_reason: str, input_tokens: int) -> list[Event]:
    """The documented SSE sequence for a Message with these content blocks."""
    start = message_json(model, [], stop_reason, input_tokens)
    start["stop_reason"] = None
    start["usage"]["output_tokens"] = 1
    events: list[Event] = [("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(content):
        events.extend(_block_events(index, block))
    message_delta = {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        "usage": {"output_tokens": _output_tokens(content)},
    }
    events.append(("message_delta", message_delta))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


# --- default script --------------------------------------------------------------


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str)]
    return []


def _last_user(body: JSON) -> JSON | None:
    # Claude Code may put a role:"system" message after the user turn, so the
    # last *user* message is not necessarily messages[-1].
    messages = body.get("messages")
    users = (
        [m for m in messages if isinstance(m, dict) and m.get("role") == "user"] if isinstance(messages, list) else []
    )
    return users[-1] if users else None


def _working_dir(body: JSON) -> str | None:
    sources = _texts(body.get("system"))
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            sources.extend(_texts(message.get("content")))
    for text in sources:
        found = _CWD.search(text)
        if found:
            return found.group(1).strip()
    return None


def _write_tool(body: JSON, prompts: list[str]) -> JSON | None:
    for text in reversed(prompts):
        if text.lstrip().startswith("<system-reminder>"):
            continue
        found = _CREATE_FILE.search(text)
        if not found:
            continue
        name = found.group(1).strip("\"'`")
        content = found.group(2).strip().rstrip(".!?,;:").strip("\"'` ")
        cwd = _working_dir(body)
        path = posixpath.join(cwd, name) if cwd else name
        return {
            "type": "tool_use",
            "id": _new_id("toolu"),
            "name": "Write",
            "input": {"file_path": path, "content": content},
        }
    return None


def default_response(body: JSON, raw: bytes) -> ScriptedResponse:
    """Answer decided from the request itself (see the module's test for cases)."""
    model = str(body.get("model", "claude-mock"))
    tokens = len(raw) // 4
    user = _last_user(body)
    content = user.get("content") if user else None
    prompts = _texts(content)
    text_all = "\n".join(prompts)
    output_format = (body.get("output_config") or {}).get("format") or {}

    def answer(blocks: list[JSON], stop_reason: str, hang_after: int | None = None) -> ScriptedResponse:
        if body.get("stream") is True:
            events = stream_events(model, blocks, stop_reason, tokens)
            return ScriptedResponse(events=events, hang_after=hang_after)
        return ScriptedResponse(body=message_json(model, blocks, stop_reason, tokens), hang_after=hang_after)

    has_tool_result = isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content
    )
    if has_tool_result:
        return answer([{"type": "text", "text": "DONE"}], "end_turn")
    if output_format.get("type") == "json_schema":  # Claude Code's session-title call
        return answer([{"type": "text", "text": '{"title": "Mock title"}'}], "end_turn")
    error = _ERROR_CONTROL.search(text_all)
    if error:
        return error_response(int(error.group(1)), error.group(2))
    if "__slow" in text_all:
        # Streaming: message_start + content_block_start, then hang. Non-streaming:
        # no answer at all until the client gives up.
        return answer([{"type": "text", "text": "slow"}], "end_turn", hang_after=2)
    tool = _write_tool(body, prompts)
    if tool:
        return answer([tool], "tool_use")
    if body.get("max_tokens") == 1:
        return answer([{"type": "text", "text": "x"}], "max_tokens")
    return answer([{"type": "text", "text": "Hello from mock"}], "end_turn")


# --- HTTP plumbing ---------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many concurrent gateway connections

    def __init__(self, address: tuple[str, int], mock: MockAnthropicUpstream) -> None:
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
    def mock(self) -> MockAnthropicUpstream:
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
        self.mock._record(RecordedRequest(self.command, self.path, headers, body, raw, time.monotonic()))
        route = self.path.split("?", 1)[0]
        if self.command in ("GET", "HEAD") and route == "/":
            response = ScriptedResponse(body={"status": "ok"})
        elif self.command == "POST" and route.endswith("/v1/messages/count_tokens") and self.mock.count_tokens:
            response = ScriptedResponse(body={"input_tokens": len(raw) // 4})
        elif self.command == "POST" and route.endswith("/v1/messages"):
            # Any path prefix, as Azure AI Foundry's https://<r>.services.ai.azure.com/anthropic/v1/messages.
            if not isinstance(body, dict):
                response = error_response(400, "invalid_request_error", "body is not a JSON object")
            else:
                response = self.mock._next_response() or default_response(body, raw)
        else:
            response = error_response(404, "not_found_error", f"mock: no route {self.command} {route}")
        if response.delay and self.mock._stopping.wait(response.delay):
            self.close_connection = True
            return
        if response.events is None and response.hang_after is not None:
            self._hold_silently()
        elif response.events is not None:
            self._send_stream(response)
        else:
            self._send_plain(response, send_body)

    def _send_plain(self, response: ScriptedResponse, send_body: bool) -> None:
        payload = response.body if isinstance(response.body, bytes) else b""
        if isinstance(response.body, dict):
            payload = json.dumps(response.body).encode()
        self.send_response(response.status)
        headers = {
            "content-type": "application/json",
            "request-id": _new_id("req"),
            **response.headers,
        }
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if send_body:
            self.wfile.write(payload)

    def _send_stream(self, response: ScriptedResponse) -> None:
        # No Content-Length + Connection: close: the body ends when we close, and
        # every event is written straight to the socket (wfile is unbuffered).
        self.close_connection = True
        self.send_response(response.status)
        headers = {
            "content-type": "text/event-stream; charset=utf-8",
            "cache-control": "no-cache",
            "request-id": _new_id("req"),
            **response.headers,
        }
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Connection", "close")
        self.end_headers()
        events = response.events or []
        try:
            for sent, (event_type, data) in enumerate(events):
                if response.hang_after is not None and sent >= response.hang_after:
                    break
                if sent and response.chunk_delay and self.mock._stopping.wait(response.chunk_delay):
                    return
                self.wfile.write(f"event: {event_type}\ndata: {json.dumps(data)}\n\n".encode())
            if response.hang_after is not None:
                self._hang(response.hang_keepalive)
        except _DISCONNECT_ERRORS:
            self.mock._record_disconnect()

    def _hang(self, keepalive: float | None) -> None:
        """Send nothing useful until the client closes; record when it did."""
        last_ping = time.monotonic()
        while not self.mock._stopping.is_set():
            if self._peer_closed():
                raise ConnectionResetError("client closed the connection")
            if keepalive is not None and time.monotonic() - last_ping >= keepalive:
                # SSE comment (a line starting with ':'), ignored by SSE parsers.
                self.wfile.write(b": keepalive\n\n")
                last_ping = time.monotonic()

    def _hold_silently(self) -> None:
        # Non-SSE response with hang_after: never answer, not even the status
        # line; only notice when the client (e.g. a gateway timeout) gives up.
        self.close_connection = True
        try:
            self._hang(None)
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


class MockAnthropicUpstream:
    """Real HTTP server on loopback answering like the Anthropic Messages API."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, count_tokens: bool = True) -> None:
        self.count_tokens = count_tokens
        self.requests: list[RecordedRequest] = []
        self.disconnects: list[float] = []
        self.errors: list[str] = []  # unexpected handler exceptions (mock bugs)
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

    @property
    def messages_requests(self) -> list[RecordedRequest]:
        """Only the POST /v1/messages calls (any query string)."""
        with self._lock:
            return [r for r in self.requests if r.path.split("?", 1)[0].endswith("/v1/messages")]

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
        """Use ``response`` for the next POST /v1/messages (FIFO)."""
        with self._lock:
            self._queue.append(response)

    def wait_for_disconnect(self, timeout: float) -> bool:
        """True once at least one streaming client disconnect was recorded."""
        return self._disconnected.wait(timeout)

    def _next_response(self) -> ScriptedResponse | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

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
