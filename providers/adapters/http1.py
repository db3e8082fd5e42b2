"""HTTP/1.1 to the upstream: one asyncio transport per connection, answers parsed by llhttp (httptools).

Why not aiohttp (which this replaced): one ~60 KB POST and its JSON answer cost 250 us of CPU through aiohttp's
ClientSession and 98 us through a transport and httptools, measured on these machines (bench/README.md); the
gateway's whole own work per request has a 1 ms budget. What aiohttp did beyond the wire, the gateway never used:
cookies, redirects, proxies, multipart, tracing. What is kept: keep-alive pooling, TLS (the caller's context, SNI),
a connect timeout and a read timeout (the longest silence while waiting for the head or between two reads of the
body), gzip/deflate answers decompressed, flow control (a caller that stops reading stops the socket being read),
and header values refused when they could split the request (CR, LF, NUL).

The connection pool and its limit live in providers/adapters/http.py; this module is one connection's wire.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re
import ssl
import zlib
from collections.abc import Iterator, Mapping
from typing import Any, cast

import httptools

# A head (status line and headers) longer than this is refused: h11 (httpx) allowed 16 KiB a line; llhttp sets no
# limit of its own.
MAX_HEAD_BYTES = 64 * 1024
# An answer buffered this far ahead of its reader stops the socket being read until the reader catches up.
READ_HIGH_WATER = 256 * 1024
USER_AGENT = "lynkr"

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 §5.1: a field name is a token
_SPLITS_REQUEST = re.compile(r"[\r\n\x00]")  # RFC 9110 §5.5: a field value must not carry CR, LF or NUL


class HttpError(Exception):
    """The answer could not be read to its end; the message names the cause."""


class Headers(Mapping[str, str]):
    """An answer's headers, looked up in any case; a repeated header's values joined with ", " (RFC 9110 §5.3)."""

    __slots__ = ("_by_name",)

    def __init__(self, pairs: list[tuple[bytes, bytes]]) -> None:
        by_name: dict[str, str] = {}
        for raw_name, raw_value in pairs:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            by_name[name] = f"{by_name[name]}, {value}" if name in by_name else value
        self._by_name = by_name

    def __getitem__(self, name: str) -> str:
        return self._by_name[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)


def request_head(method: str, target: str, host: str, headers: tuple[tuple[str, str], ...], length: int) -> bytes:
    """The request line and headers. ``Host``, ``Content-Length``, ``Accept-Encoding`` and ``User-Agent`` are added
    unless the caller set them. A name that is not a token or a value that could end the line is refused."""
    lines = [f"{method} {target} HTTP/1.1"]
    given = set()
    for name, value in headers:
        if not _TOKEN.fullmatch(name) or _SPLITS_REQUEST.search(value):
            raise ValueError(f"invalid upstream request header {name!r}")
        lines.append(f"{name}: {value}")
        given.add(name.lower())
    defaults = (
        ("host", "Host", host),
        ("content-length", "Content-Length", str(length)),
        ("accept-encoding", "Accept-Encoding", "gzip, deflate"),
        ("user-agent", "User-Agent", USER_AGENT),
    )
    lines.extend(f"{title}: {value}" for name, title, value in defaults if name not in given)
    lines.append("\r\n")
    return "\r\n".join(lines).encode()


class Connection(asyncio.Protocol):
    """One keep-alive connection; one exchange (``send``, ``head``, ``read``) at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, key: tuple[str, str, int]) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.idle_since = 0.0
        self.key = key  # (scheme, host, port) it is connected to: the pool's idle lists are keyed by it
        self._parser: Any = None  # httptools.HttpResponseParser, one per exchange
        self._waiter: asyncio.Future[None] | None = None
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.head_done = False
        self.complete = False
        self.keep_alive = False
        self.error: HttpError | None = None
        self._head_bytes = 0  # bytes read while the head is incomplete
        self._header_bytes = 0
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._paused = False
        self._until_close = False
        self._decompress: Any = None

    # --- the caller's side -------------------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Start an exchange: the request goes out (what the socket does not take now, the transport sends later)."""
        self._reset()
        self._parser = httptools.HttpResponseParser(self)
        assert self.transport is not None
        self.transport.write(data)

    async def head(self, silence: float) -> None:
        """Wait for the answer's status and headers; TimeoutError after ``silence`` seconds without a byte."""
        while not self.head_done:
            if self.error is not None:
                raise self.error
            await self._wait(silence)

    async def read(self, silence: float) -> bytes:
        """What has arrived of the body (waiting for some), b"" at its end. Data that came before a failure is
        handed out before the failure is raised."""
        while True:
            if self._chunks:
                chunks = self._chunks
                data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
                chunks.clear()
                self._buffered = 0
                if self._paused and self.transport is not None:
                    self._paused = False
                    self.transport.resume_reading()
                return data
            if self.error is not None:
                raise self.error
            if self.complete:
                return b""
            await self._wait(silence)

    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.lost and self.error is None

    def close(self) -> None:
        self.lost = True
        if self.transport is not None and not self.transport.is_closing():
            # A transport of a loop that is already closed cannot be closed through it (asyncio's own finaliser
            # closes its socket when it is collected).
            with contextlib.suppress(RuntimeError):
                self.transport.close()

    async def _wait(self, silence: float) -> None:
        # One timer per wait rather than per received chunk (aiohttp re-armed its read timer on every read).
        waiter: asyncio.Future[None] = self.loop.create_future()
        self._waiter = waiter
        timer = self.loop.call_later(silence, _expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, message: str) -> None:
        if self.error is None and not self.complete:
            self.error = HttpError(message)
        self.close()
        self._wake()

    # --- asyncio's side ----------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: uvloop's transports are not asyncio.Transport subclasses.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._parser is None or self.complete:
            self._fail("unexpected bytes between answers")  # nothing may arrive on an idle connection
            return
        if not self.head_done:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(f"malformed answer ({type(exc).__name__})")
            return
        if not self.head_done and self._head_bytes > MAX_HEAD_BYTES:
            self._fail(f"answer head over {MAX_HEAD_BYTES} bytes")

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self._parser is not None and self.head_done and self._until_close and not self.complete:
            self.on_message_complete()  # an answer without a length ends when its connection does (RFC 9112 §6.3)
        elif self._parser is not None and not self.complete and self.error is None:
            self.error = HttpError(type(exc).__name__ if exc else "closed by the upstream")
        self._wake()

    # --- llhttp's callbacks (httptools) ------------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.raw_headers.append((name, value))
        self._header_bytes += len(name) + len(value)

    def on_headers_complete(self) -> None:
        parser = self._parser
        status = parser.get_status_code()
        if 100 <= status < 200:  # an interim answer (103 Early Hints): the real one follows
            self.raw_headers = []
            self._header_bytes = 0
            return
        if self._header_bytes > MAX_HEAD_BYTES:  # a head that arrived whole in one read
            self._fail(f"answer head over {MAX_HEAD_BYTES} bytes")
            return
        self.status = status
        self.head_done = True
        encoding = b""
        framed = status in (204, 304)
        for name, value in self.raw_headers:
            lower = name.lower()
            if lower == b"content-encoding":
                encoding = value.strip().lower()
            elif lower in (b"content-length", b"transfer-encoding"):
                framed = True
        self._until_close = not framed
        if encoding == b"gzip":
            self._decompress = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == b"deflate":
            self._decompress = zlib.decompressobj()
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self._decompress is not None:
            try:
                body = self._decompress.decompress(body)
            except zlib.error:
                self._fail("malformed compressed answer")
                return
        if body:
            self._chunks.append(body)
            self._buffered += len(body)
            if self._buffered > READ_HIGH_WATER and not self._paused and self.transport is not None:
                self._paused = True
                self.transport.pause_reading()
            self._wake()

    def on_message_begin(self) -> None:
        if self.complete:  # bytes after the answer, in the same read: the connection is not fit to reuse
            self.keep_alive = False

    def on_message_complete(self) -> None:
        if not self.head_done or self.error is not None:
            return  # the end of an interim answer, or of one that already failed
        if self._decompress is not None:
            rest = self._decompress.flush()
            if rest:
                self._chunks.append(rest)
        self.keep_alive = not self._until_close and bool(self._parser.should_keep_alive())
        self.complete = True
        self._wake()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


async def connect(
    loop: asyncio.AbstractEventLoop, key: tuple[str, str, int], context: ssl.SSLContext | None, within: float
) -> Connection:
    """A new connection to ``key``'s host and port (DNS, TCP and, with a context, TLS with SNI), within ``within``
    seconds."""
    _, host, port = key
    connection = Connection(loop, key)
    await asyncio.wait_for(
        loop.create_connection(
            lambda: connection, host, port, ssl=context, server_hostname=host if context is not None else None
        ),
        within,
    )
    return connection
