"""HTTP/1.1 on raw asyncio sockets, shared by the benchmark's mock upstream and load generator.

Only what they need: a request parser (Content-Length and chunked bodies, Connection; RFC 9112 §6, §7.1) for the
mock, and for the client a request builder, an incremental response parser that times the head, the first body
byte, the first token (a marker in the body) and the end, and a keep-alive connection sending one request at a time.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass


def raise_nofile_limit() -> None:
    """Thousands of held streams need thousands of descriptors: lift the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def install_uvloop() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


class Request:
    __slots__ = ("body", "close", "method", "path")

    def __init__(self, method: bytes, path: bytes, body: bytes, close: bool) -> None:
        self.method = method
        self.path = path
        self.body = body
        self.close = close


def parse_request(buf: bytearray) -> tuple[Request | None, int]:
    """One complete request from the front of ``buf`` and the bytes it used, or (None, 0) if incomplete."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None, 0
    head = bytes(buf[:end]).split(b"\r\n")
    method, path, version = [*head[0].split(b" "), b"", b""][:3]
    length = 0
    chunked = False
    close = version == b"HTTP/1.0"
    for line in head[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            value = value.strip().lower()
            close = value == b"close" or (close and value != b"keep-alive")
    start = end + 4
    if not chunked:
        if len(buf) < start + length:
            return None, 0
        return Request(method, path, bytes(buf[start : start + length]), close), start + length
    body = bytearray()
    pos = start
    while True:  # chunked request body (RFC 9112 §7.1); trailers are skipped
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            return None, 0
        size = int(bytes(buf[pos:line_end]).split(b";")[0].strip() or b"0", 16)
        pos = line_end + 2
        if size == 0:
            trailer_end = buf.find(b"\r\n", pos)
            while trailer_end > pos:  # a trailer line; skip it
                pos = trailer_end + 2
                trailer_end = buf.find(b"\r\n", pos)
            if trailer_end < 0:
                return None, 0
            return Request(method, path, bytes(body), close), trailer_end + 2
        if len(buf) < pos + size + 2:
            return None, 0
        body += buf[pos : pos + size]
        pos += size + 2


perf = time.perf_counter


@dataclass(slots=True)
class Sample:
    start: float
    head: float = 0.0
    first_byte: float = 0.0
    first_token: float = 0.0
    end: float = 0.0
    status: int = 0
    body_bytes: int = 0
    error: str = ""


def build_request(host: str, port: int, path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"host: {host}:{port}", f"content-length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class ResponseParser:
    """Incremental HTTP/1.1 response parser: head, then a Content-Length or chunked body (RFC 9112 §6, §7.1)."""

    __slots__ = (
        "buf",
        "chunk_left",
        "chunked",
        "close",
        "crlf_left",
        "done",
        "in_body",
        "length_left",
        "marker",
        "marker_found",
        "sample",
        "tail",
    )

    def __init__(self, sample: Sample, marker: bytes) -> None:
        self.sample = sample
        self.marker = marker
        self.buf = bytearray()
        self.in_body = False
        self.chunked = False
        self.length_left = 0
        self.chunk_left = -1  # data bytes left in the current chunk; -1: a chunk-size line comes next
        self.crlf_left = 0
        self.close = False
        self.done = False
        self.marker_found = not marker
        self.tail = b""

    def feed(self, data: bytes, now: float) -> None:
        self.buf += data
        if not self.in_body:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self._head(bytes(self.buf[:end]), now)
            del self.buf[: end + 4]
            self.in_body = True
            if not self.chunked and self.length_left == 0:
                self._finish(now)
                return
        if self.chunked:
            self._chunks(now)
        else:
            take = min(len(self.buf), self.length_left)
            if take:
                self._body(bytes(self.buf[:take]), now)
                del self.buf[:take]
                self.length_left -= take
            if self.length_left == 0:
                self._finish(now)

    def _head(self, head: bytes, now: float) -> None:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        self.sample.status = int(parts[1]) if len(parts) > 1 else 0
        self.sample.head = now
        self.close = lines[0].startswith(b"HTTP/1.0")
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            value = value.strip().lower()
            if name == b"content-length":
                self.length_left = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value:
                self.chunked = True
            elif name == b"connection":
                self.close = value == b"close"

    def _chunks(self, now: float) -> None:
        buf = self.buf
        size_of = len(buf)
        pos = 0
        while not self.done:
            if self.chunk_left < 0:  # a chunk-size line
                line_end = buf.find(b"\r\n", pos)
                if line_end < 0:
                    break
                size = int(bytes(buf[pos:line_end]).split(b";")[0].strip() or b"0", 16)
                if size == 0:  # the last chunk, then optional trailers and an empty line
                    if buf[line_end + 2 : line_end + 4] == b"\r\n":
                        pos = line_end + 4
                    else:
                        end = buf.find(b"\r\n\r\n", line_end + 2)
                        if end < 0:
                            break  # re-read from the size line when more arrives
                        pos = end + 4
                    self._finish(now)
                    break
                pos = line_end + 2
                self.chunk_left = size
                self.crlf_left = 2
            if self.chunk_left > 0:
                take = min(size_of - pos, self.chunk_left)
                if take <= 0:
                    break
                self._body(bytes(buf[pos : pos + take]), now)
                pos += take
                self.chunk_left -= take
                if self.chunk_left:
                    break
            take = min(size_of - pos, self.crlf_left)  # the CRLF after the chunk's data
            pos += take
            self.crlf_left -= take
            if self.crlf_left:
                break
            self.chunk_left = -1
        del buf[:pos]

    def _body(self, data: bytes, now: float) -> None:
        sample = self.sample
        if not sample.first_byte:
            sample.first_byte = now
        sample.body_bytes += len(data)
        if not self.marker_found:
            window = self.tail + data
            if self.marker in window:
                self.marker_found = True
                sample.first_token = now
            else:
                self.tail = window[-(len(self.marker) - 1) :]

    def _finish(self, now: float) -> None:
        self.done = True
        sample = self.sample
        sample.end = now
        if not sample.first_byte:
            sample.first_byte = now
        if not sample.first_token:
            sample.first_token = now if not self.marker or self.marker_found else 0.0


class Connection(asyncio.Protocol):
    """One keep-alive connection sending one request at a time."""

    def __init__(self, on_lost: Callable[[Connection], None]) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser: ResponseParser | None = None
        self.future: asyncio.Future[Sample] | None = None
        self.on_lost = on_lost

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio.Transport

    def send(self, request: bytes, marker: bytes) -> asyncio.Future[Sample]:
        assert self.transport is not None
        sample = Sample(start=perf())
        self.parser = ResponseParser(sample, marker)
        self.future = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.future

    def data_received(self, data: bytes) -> None:
        parser = self.parser
        if parser is None:
            return
        parser.feed(data, perf())
        if parser.done:
            self.parser = None
            future, self.future = self.future, None
            if parser.close and self.transport is not None:
                self.transport.close()
                self.transport = None
            if future is not None and not future.done():
                future.set_result(parser.sample)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.future is not None and not self.future.done() and self.parser is not None:
            sample = self.parser.sample
            sample.error = f"connection lost: {exc or 'closed by server'}"
            sample.end = perf()
            self.future.set_result(sample)
        self.on_lost(self)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
