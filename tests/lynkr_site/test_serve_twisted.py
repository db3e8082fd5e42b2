"""Daphne's HTTP channel as ``lynkr serve`` builds it: same requests parsed, minus work an ASGI app never uses."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import time
from typing import Any

import daphne.server  # installs Twisted's asyncio reactor first, as under lynkr serve)
import pytest
from twisted.internet import tcp
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.web import http

from lynkr_site import serve_twisted


class _Queue:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def put_nowait(self, message: dict[str, Any]) -> None:
        self.messages.append(message)


class _Server:
    """What Daphne's WebRequest asks of its server."""

    proxy_forwarded_address_header = None
    root_path = ""
    request_buffer_size = 8192
    server_name = "lynkr-test"

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []
        self.queues: list[_Queue] = []
        self.requests: list[Any] = []
        self.actions: list[tuple[str, str]] = []

    def protocol_connected(self, request: Any) -> None:
        self.requests.append(request)

    def protocol_disconnected(self, request: Any) -> None:
        return None

    def create_application(self, request: Any, scope: dict[str, Any]) -> _Queue:
        self.scopes.append(scope)
        self.queues.append(_Queue())
        return self.queues[-1]

    def log_action(self, protocol: str, action: str, details: dict[str, Any]) -> None:
        self.actions.append((protocol, action))


def _connect() -> tuple[_Server, Any, StringTransport]:
    server = _Server()
    factory = serve_twisted.HTTPFactory(server)
    factory.reactor = Clock()  # the channel's idle timeout, off the real reactor
    protocol = factory.buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    return server, protocol, transport


def _request(body: bytes, content_type: bytes = b"application/json", extra: bytes = b"") -> bytes:
    head = b"POST /v1/messages?beta=true HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: " + content_type + b"\r\n"
    return head + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body


def _body(server: _Server, index: int = 0) -> bytes:
    return b"".join(m["body"] for m in server.queues[index].messages if m["type"] == "http.request")


def test_a_head_and_body_in_one_read_reach_the_application_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    server, protocol, _ = _connect()
    buffered: list[int] = []  # what LineReceiver still holds (and copied) as each header line is split off
    line_received = http.HTTPChannel.lineReceived

    def spy(channel: http.HTTPChannel, line: bytes) -> None:
        buffered.append(len(channel._buffer))
        line_received(channel, line)

    monkeypatch.setattr(http.HTTPChannel, "lineReceived", spy)
    body = b'{"model":"m","messages":[' + b'{"role":"user","content":"x"},' * 4000 + b"]}"
    protocol.dataReceived(_request(body, extra=b"X-Api-Key: sk-1\r\nAnthropic-Version: 2023-06-01\r\n"))
    assert len(buffered) == 7 and max(buffered) < 200  # the head's lines only, not the 120 KB body behind them
    assert len(server.scopes) == 1
    scope = server.scopes[0]
    assert (scope["method"], scope["path"], scope["query_string"]) == ("POST", "/v1/messages", b"beta=true")
    assert (b"x-api-key", b"sk-1") in scope["headers"]
    assert (b"anthropic-version", b"2023-06-01") in scope["headers"]
    assert _body(server) == body
    assert server.queues[0].messages[-1]["more_body"] is False


def test_a_body_is_kept_in_memory_handed_over_whole_and_then_dropped() -> None:
    server, protocol, _ = _connect()
    body = b'{"messages":"' + b"y" * 150_000 + b'"}'  # past Twisted's 100 000-byte spool-to-disk threshold
    protocol.dataReceived(_request(body))
    requests = [m for m in server.queues[0].messages if m["type"] == "http.request"]
    assert [m["body"] for m in requests] == [body, b""]  # one piece (and the end), not 19 of 8 KiB
    assert [m["more_body"] for m in requests] == [True, False]
    assert server.requests[0].content is None  # not held for the response's lifetime


def test_a_body_over_the_memory_bound_or_of_unknown_size_spools_as_twisted_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(serve_twisted.WebRequest, "body_memory_max", 1000)
    server, protocol, _ = _connect()
    protocol.dataReceived(_request(b"z" * 1001))
    assert _body(server) == b"z" * 1001
    assert len([m for m in server.queues[0].messages if m["type"] == "http.request"]) == 1  # 8 KiB pieces: one
    unsized_server, unsized, _ = _connect()
    unsized.dataReceived(
        b"POST /v1/messages HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    )
    assert _body(unsized_server) == b"hello"


def test_a_head_split_across_reads_and_a_small_request_parse_as_before() -> None:
    server, protocol, _ = _connect()
    raw = _request(b"x" * 10_000)
    protocol.dataReceived(raw[:30])  # part of the head: no end of head in the first read
    protocol.dataReceived(raw[30:])
    assert _body(server) == b"x" * 10_000
    small_server, small, _ = _connect()
    small.dataReceived(_request(b'{"a":1}'))
    assert _body(small_server) == b'{"a":1}'


def test_form_bodies_are_not_parsed_into_twisted_args() -> None:
    server, protocol, _ = _connect()
    form = b"a=1&" * 2000
    protocol.dataReceived(_request(form, content_type=b"application/x-www-form-urlencoded"))
    request = server.requests[0]
    # Only the query string: Twisted's default would have decoded the body's fields too, which nothing reads.
    assert request.args == {b"beta": [b"true"]}
    assert _body(server) == form  # the body still reaches the application untouched


def test_a_bad_head_is_refused_and_the_rest_of_the_read_is_dropped() -> None:
    server, protocol, transport = _connect()
    raw = b"POST /v1/messages HTTP/1.1\r\nBad Header Without Colon\r\nContent-Length: 5000\r\n\r\n" + b"y" * 5000
    protocol.dataReceived(raw)
    assert transport.value().startswith(b"HTTP/1.1 400 Bad Request")
    assert transport.disconnecting
    assert server.scopes == []


def test_a_finished_request_writes_the_response_and_no_twisted_access_line() -> None:
    server, protocol, transport = _connect()
    access = io.StringIO()
    protocol.factory._logFile = access  # where Twisted's Request.finish would write its combined-log line
    protocol.dataReceived(_request(b'{"a":1}' * 1000))
    request = server.requests[0]
    request.handle_reply({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    request.handle_reply({"type": "http.response.body", "body": b"{}"})
    assert transport.value().startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.value().endswith(b"\r\n\r\n{}")
    assert access.getvalue() == ""
    assert server.actions == [("http", "complete")]  # Daphne's own access log (LYNKR_ACCESS_LOG) still hears of it


def test_install_points_daphne_at_the_factories(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(daphne.server, "HTTPFactory", daphne.server.HTTPFactory)  # restored after the test
    monkeypatch.setattr(daphne.server, "WebSocketFactory", daphne.server.WebSocketFactory)
    monkeypatch.setattr(serve_twisted.WebRequest, "body_memory_max", serve_twisted.WebRequest.body_memory_max)
    serve_twisted.daphne_install(5000)  # daphne.server is loaded here already: only the names change
    assert serve_twisted.WebRequest.body_memory_max == 5000
    assert daphne.server.HTTPFactory is serve_twisted.HTTPFactory
    assert daphne.server.WebSocketFactory is serve_twisted.LazyWebSocketFactory


def test_daphne_starts_without_autobahn_until_a_websocket_upgrade() -> None:
    # A fresh interpreter, as under `lynkr serve`: daphne.server not yet imported when the stand-in goes in.
    code = """
import sys
from lynkr_site.serve_twisted import LazyWebSocketFactory, daphne_install
daphne_install(1 << 20)
from daphne import cli, server
assert server.WebSocketFactory is LazyWebSocketFactory, server.WebSocketFactory
assert "daphne.ws_protocol" not in sys.modules
assert not [name for name in sys.modules if name.startswith("autobahn")]
from daphne.ws_protocol import WebSocketFactory  # the real module, for the first upgrade
assert WebSocketFactory is not LazyWebSocketFactory
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_websocket_factory_is_built_on_the_first_upgrade_with_daphnes_options() -> None:
    from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol

    lazy = serve_twisted.LazyWebSocketFactory(_Server(), server="lynkr-test")
    lazy.setProtocolOptions(autoPingTimeout=7, allowNullOrigin=True)
    assert lazy._real is None
    protocol = lazy.buildProtocol(None)
    assert isinstance(protocol, WebSocketProtocol)
    real = lazy._real
    assert isinstance(real, WebSocketFactory)
    assert (real.server, real.autoPingTimeout, real.allowNullOrigin) == ("lynkr-test", 7, True)
    assert protocol.factory is real
    lazy.setProtocolOptions(autoPingTimeout=9)  # options set later reach the real factory too
    assert real.autoPingTimeout == 9
    assert lazy.buildProtocol(None).factory is real  # built once


class _Reactor:
    """What a Twisted transport asks of its reactor: the descriptors it reads and writes."""

    def __init__(self) -> None:
        self.writers: set[Any] = set()
        self.readers: set[Any] = set()

    def addWriter(self, selectable: Any) -> None:
        self.writers.add(selectable)

    def removeWriter(self, selectable: Any) -> None:
        self.writers.discard(selectable)

    def addReader(self, selectable: Any) -> None:
        self.readers.add(selectable)

    def removeReader(self, selectable: Any) -> None:
        self.readers.discard(selectable)


@pytest.fixture
def tcp_pair() -> Any:
    """An accepted server-side socket (as Daphne's port gets it) and its client."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        accepted, peer = listener.accept()
    accepted.setblocking(False)
    client.settimeout(5)
    yield accepted, peer, client
    accepted.close()
    client.close()


def _transport(tcp_pair: Any, protocol: Any) -> tuple[serve_twisted.Connection, _Reactor, socket.socket]:
    accepted, peer, client = tcp_pair
    reactor = _Reactor()
    return serve_twisted.Connection(accepted, protocol, peer, None, 1, reactor), reactor, client


def _pending(client: socket.socket) -> bytes:
    client.setblocking(False)
    try:
        return client.recv(1 << 20)
    except BlockingIOError:
        return b""
    finally:
        client.settimeout(5)


def test_a_connection_sends_its_buffer_on_flush_and_has_nodelay(tcp_pair: Any) -> None:
    conn, reactor, client = _transport(tcp_pair, Protocol())
    assert conn.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    conn.write(b"HTTP/1.1 200 OK\r\n")
    conn.writeSequence([b"a: b\r\n", b"\r\n"])
    time.sleep(0.05)
    assert _pending(client) == b""  # Twisted's own behaviour: buffered for the reactor's next pass
    conn.flush()
    assert client.recv(100) == b"HTTP/1.1 200 OK\r\na: b\r\n\r\n"
    assert reactor.writers == {conn}  # still registered: the reactor's pass finds nothing left and unregisters
    assert conn.doWrite() is None
    assert reactor.writers == set()
    conn.flush()  # nothing buffered: nothing sent
    assert _pending(client) == b""


def test_a_short_send_leaves_the_rest_to_the_reactor_in_order(tcp_pair: Any) -> None:
    conn, reactor, client = _transport(tcp_pair, Protocol())
    data = bytes(range(256)) * 40_000  # ~10 MB: more than the socket buffers take at once
    conn.write(data)
    conn.flush()
    assert 0 < conn._tempDataLen < len(data)
    received = bytearray()
    while len(received) < len(data):
        received += client.recv(1 << 20)
        if conn in reactor.writers:
            conn.doWrite()
    assert bytes(received) == data


def test_a_closing_connection_is_left_to_the_reactor(tcp_pair: Any) -> None:
    conn, reactor, client = _transport(tcp_pair, Protocol())
    conn.write(b"bye")
    conn.loseConnection()
    conn.flush()
    time.sleep(0.05)
    assert _pending(client) == b""  # doWrite sends it and then closes, as without the flush
    assert reactor.writers == {conn}


def test_each_reply_leaves_at_once_in_one_send(tcp_pair: Any) -> None:
    server = _Server()
    factory = serve_twisted.HTTPFactory(server)
    factory.reactor = Clock()
    protocol = factory.buildProtocol(None)
    conn, _, client = _transport(tcp_pair, protocol)
    protocol.makeConnection(conn)
    protocol.dataReceived(_request(b'{"a":1}'))
    request = server.requests[0]
    request.handle_reply({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    assert _pending(client) == b""  # the head waits for the body: one send, not two
    request.handle_reply({"type": "http.response.body", "body": b"event: one\n\n", "more_body": True})
    first = client.recv(1000)
    assert first.startswith(b"HTTP/1.1 200 OK\r\n") and first.endswith(b"event: one\n\n\r\n")  # a chunk of its own
    request.handle_reply({"type": "http.response.body", "body": b"event: two\n\n"})
    assert client.recv(1000) == b"c\r\nevent: two\n\n\r\n0\r\n\r\n"


def test_install_makes_daphnes_port_accept_flushing_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(daphne.server, "HTTPFactory", daphne.server.HTTPFactory)
    monkeypatch.setattr(daphne.server, "WebSocketFactory", daphne.server.WebSocketFactory)
    monkeypatch.setattr(tcp.Port, "transport", tcp.Port.transport)
    monkeypatch.setattr(serve_twisted.WebRequest, "body_memory_max", serve_twisted.WebRequest.body_memory_max)
    serve_twisted.daphne_install(32 * 1024 * 1024)
    assert tcp.Port.transport is serve_twisted.Connection
