"""Daphne's HTTP/1.1 server without per-request work that an ASGI application never uses, and without autobahn
until a WebSocket upgrade arrives.

Daphne parses requests with Twisted's ``twisted.web.http``. Profiling Daphne under 64 concurrent Claude Code turns
(py-spy, bench/README.md) found three costs there, together ~9 % of the server's CPU, that buy Lynkr nothing:

- Form parsing. ``Request.requestReceived`` parses every POST's Content-Type with ``email.message`` (~5 %) to see if
  it is a form whose fields belong in ``request.args``. Daphne hands the raw body to the application and never reads
  ``args``, so the request is built with ``parsePOSTFormSubmission=False`` (Twisted's own switch).
- Twisted's access log. ``Request.finish`` formats a combined-log line per request and writes it to Twisted's global
  log, which Daphne points at an observer that drops everything (~1.5 %). Daphne's own access log (``--access-log``,
  LYNKR_ACCESS_LOG) is separate and unaffected.
- Header lines. ``LineReceiver.dataReceived`` splits each header line off the front of its buffer, copying everything
  after it; a 77 KB turn arrives with its ~20 header lines in one read, so ~1.5 MB was copied per request (~3 %). The
  head and the body are handed over as two reads instead, as TCP itself may deliver them: same bytes, same order.

And the request body. Twisted keeps it until the response has finished, a whole stream's lifetime (~77 KB per held
Claude Code stream), and spools a body of 100 000 bytes or more to a temporary file on disk: a Claude Code session's
turns pass that size within a few turns, and the application reads every body into memory anyway (bounded by
LYNKR_MAX_BODY_BYTES). Bodies within that bound stay in memory, are handed to the application in one message instead
of 8 KiB pieces, and are dropped once handed over; a bigger or unsized one still spools as before.

And one cost in latency: Twisted's transports buffer every write until the reactor's next pass. A streamed answer
whose upstream chunks arrive together is then re-encoded whole before its first event leaves: the first token waited
for the last (uvicorn, whose asyncio transports send at once, measured ~0.3 ms sooner). The request flushes its
transport after each ASGI message it writes instead, so a JSON answer still leaves in one send and each streamed event
as soon as it is written; connections get TCP_NODELAY, as asyncio's do, so those small sends are not held back.

And one cost at start: ``daphne.server`` imports its WebSocket module, which imports autobahn (WAMP, flatbuffers, cffi
validators: ~6 MB resident, measured) for a protocol Lynkr does not route (lynkr_site/asgi.py serves HTTP only). A
stand-in factory takes its place until the first upgrade, which imports and builds the real one.
"""

from __future__ import annotations

import io
import sys
import types
from typing import Any

from daphne import http_protocol
from twisted.internet import tcp
from twisted.protocols import basic
from twisted.web import http

# Below this a read is parsed as it came: the copying only matters once a body rides along with the head.
HEAD_SPLIT_MIN = 4096
_END_OF_HEAD = b"\r\n\r\n"


class RequestBody(io.BytesIO):
    """A request body that Daphne's ``process`` reads out whole: it asks for ``request_buffer_size`` (8 KiB) at a time,
    and ASGI lets a body arrive in any number of messages."""

    def read(self, size: int | None = -1) -> bytes:
        return super().read()


class WebRequest(http_protocol.WebRequest):
    # Bodies up to this size are kept in memory (daphne_install sets it to LYNKR_MAX_BODY_BYTES).
    body_memory_max = 32 * 1024 * 1024
    content: Any  # Twisted's request body file; None once handed over

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["parsePOSTFormSubmission"] = False
        super().__init__(*args, **kwargs)

    def gotLength(self, length: int | None) -> None:
        if length is not None and length <= self.body_memory_max:
            self.content = RequestBody()
        else:
            super().gotLength(length)

    def process(self) -> Any:
        processing = super().process()  # the body is queued for the application before this returns
        processing.addCallback(self._body_handed_over)
        return processing

    def _body_handed_over(self, result: Any) -> Any:
        if self.application_queue is not None and self.content is not None:
            self.content.close()
            self.content = None
        return result

    def handle_reply(self, message: dict[str, Any]) -> None:
        super().handle_reply(message)
        if isinstance(self.transport, Connection):  # not under TLS, whose protocol sits in between
            self.transport.flush()


class Connection(tcp.Server):
    """An accepted TCP connection that can send its buffered bytes before the reactor's next pass."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.setTcpNoDelay(True)

    def flush(self) -> None:
        """Send what ``write`` buffered, now. Only the plain case is handled here: connected and not closing, nothing
        left over from an earlier partial send, no TLS started. A short send keeps the rest buffered; a failed one
        keeps it all. The writer stays registered either way, so the reactor's ``doWrite`` still sends any rest, reports
        a broken connection, and resumes producers as before (with nothing left it only unregisters)."""
        if not self._tempDataBuffer or self.dataBuffer or self.TLS:
            return
        if not self.connected or self.disconnecting or self._writeDisconnecting or self._writeDisconnected:
            return
        data = b"".join(self._tempDataBuffer)
        sent = self.writeSomeData(data)
        if isinstance(sent, Exception) or sent <= 0:
            return
        self._tempDataBuffer = [data[sent:]] if sent < len(data) else []
        self._tempDataLen = len(data) - sent


class HTTPChannel(http.HTTPChannel):
    def dataReceived(self, data: bytes) -> None:
        if self.line_mode and not self._busyReceiving and len(data) >= HEAD_SPLIT_MIN:
            cut = data.find(_END_OF_HEAD) + len(_END_OF_HEAD)
            if len(_END_OF_HEAD) <= cut < len(data):
                super().dataReceived(data[:cut])
                # A bad head makes the channel answer 400 and close: the rest would have stayed unread.
                if self.transport is not None and not self.transport.disconnecting:
                    basic.LineReceiver.dataReceived(self, data[cut:])
                return
        super().dataReceived(data)


class HTTPFactory(http_protocol.HTTPFactory):
    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = WebRequest
        return protocol

    def protocol(self) -> Any:  # Twisted's _genericHTTPChannelProtocolFactory, with the channel above
        return http._GenericHTTPChannelProtocol(HTTPChannel())

    def log(self, request: Any) -> None:
        return None


class LazyWebSocketFactory:
    """``daphne.ws_protocol.WebSocketFactory`` built on the first WebSocket upgrade, with the arguments and protocol
    options Daphne gave at start; until then autobahn stays unimported."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._args = args
        self._kwargs = kwargs
        self._options: dict[str, Any] = {}
        self._real: Any = None

    def setProtocolOptions(self, **options: Any) -> None:
        self._options.update(options)
        if self._real is not None:
            self._real.setProtocolOptions(**options)

    def buildProtocol(self, addr: Any) -> Any:
        if self._real is None:
            from daphne.ws_protocol import WebSocketFactory

            self._real = WebSocketFactory(*self._args, **self._kwargs)
            self._real.setProtocolOptions(**self._options)
        return self._real.buildProtocol(addr)


def daphne_install(body_memory_max: int) -> None:
    """Point Daphne's server at the factories above (``daphne.server.Server.run`` looks both names up when it runs).
    Call it before anything imports ``daphne.server`` (``daphne.cli`` does), or autobahn is already loaded."""
    if "daphne.server" not in sys.modules:
        # daphne.server's `from .ws_protocol import WebSocketFactory` takes the stand-in; the module is forgotten
        # again right after, so the first upgrade imports the real one.
        stand_in = types.ModuleType("daphne.ws_protocol")
        stand_in.WebSocketFactory = LazyWebSocketFactory  # type: ignore[attr-defined]
        sys.modules["daphne.ws_protocol"] = stand_in
        try:
            from daphne import server  # installs Twisted's asyncio reactor unless one is
        finally:
            del sys.modules["daphne.ws_protocol"]
    from daphne import server

    WebRequest.body_memory_max = body_memory_max
    server.HTTPFactory = HTTPFactory  # type: ignore[misc]
    server.WebSocketFactory = LazyWebSocketFactory  # type: ignore[misc]
    # Daphne listens through an endpoint string (tcp:port=...), whose port builds tcp.Port.transport for every
    # accepted connection; the serving process has no other Twisted server.
    tcp.Port.transport = Connection
