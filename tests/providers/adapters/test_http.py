"""Sending upstream requests (providers/adapters/http.py) against real loopback HTTP servers (never another address).

Most tests use a tiny HTTP/1.1 server on 127.0.0.1 in the test's own loop, so each one scripts exactly what goes on
the wire (a pause, a dropped connection, gzip); the event-loop lifetime tests use the threaded mock upstream, which
outlives the loops they create.
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import ssl
import warnings
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

import orjson
import pytest

from gateway.wire.errors import ApiError, OverloadedError, TimeoutError_, UpstreamPoolFullError
from providers.adapters import http
from providers.adapters.base import UpstreamRequest
from providers.adapters.http import (
    UpstreamDisconnected,
    UpstreamReadTimeout,
    UpstreamResponse,
    upstream_read_error_body,
    upstream_send,
)
from tests.mocks.anthropic_upstream import MockAnthropicUpstream
from tests.services import free_port

# (writer, head, body) -> keep the connection for the next request (True), close it (False), or hold it, sending
# nothing more, until the client closes it (None).
Answer = Callable[[asyncio.StreamWriter, bytes, bytes], Awaitable[bool | None]]


def reply(status: int, body: bytes, *headers: tuple[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"content-length: {len(body)}", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Server:
    """HTTP/1.1 on 127.0.0.1 in the test's loop. Every request is answered by ``answer``; it records what came."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.heads: list[bytes] = []
        self.bodies: list[bytes] = []
        self.connections = 0
        self.closed_by_client = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.url = ""

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()  # a held connection's handler sees the end and returns
        await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), 5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    self.closed_by_client += 1
                    return
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                self.heads.append(head)
                self.bodies.append(body)
                keep = await self.answer(writer, head, body)
                if keep is None:
                    while await reader.read(65536):
                        pass
                    self.closed_by_client += 1
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            self.closed_by_client += 1
        finally:
            writer.close()
            self._writers.discard(writer)
            self._tasks.discard(task)


def request(url: str, body: bytes = b'{"x": 1}', *, connect: float = 2.0, read: float = 5.0) -> UpstreamRequest:
    headers = (("content-type", "application/json"), ("x-api-key", "k"))
    return UpstreamRequest("POST", url, headers, body, connect_timeout=connect, read_timeout=read)


def holds_after(raw: bytes) -> Answer:
    """An answer that writes ``raw`` and then holds the connection, sending nothing more."""

    async def answer(writer: asyncio.StreamWriter, head: bytes, body: bytes) -> bool | None:
        writer.write(raw)
        return None

    return answer


async def closed_by_client(server: Server) -> int:
    """How many connections the client closed, once it has closed one (or after half a second)."""
    for _ in range(50):
        if server.closed_by_client:
            break
        await asyncio.sleep(0.01)
    return server.closed_by_client


async def ok(writer: asyncio.StreamWriter, head: bytes, body: bytes) -> bool:
    writer.write(reply(200, b'{"ok": true}', ("content-type", "application/json"), ("X-Trace-Id", "t1")))
    return True


async def read_all(response: UpstreamResponse) -> bytes:
    chunks = []
    try:
        while chunk := await response.read_chunk():
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        await response.aclose()


@pytest.fixture(autouse=True)
def _own_pools() -> Iterator[None]:
    """Each test's loop gets its own pool (settings are read when it is made); none may outlive its loop."""
    yield
    gc.collect()
    assert all(not loop.is_closed() for loop in http._pools), "a closed loop's pool was left behind"


# --- what goes on the wire ----------------------------------------------------------------------------------------


async def test_url_body_and_headers_go_out_as_built() -> None:
    async with Server(ok) as server:
        # Azure's query string and an escaped path segment must not be re-encoded or normalised.
        path = "/openai/deployments/gpt%2D4o/chat/completions?api-version=2024-10-21&q=a%2Fb"
        response = await upstream_send(request(server.url + path, b'{"big": "body"}'), provider_name="p")
        assert response.status_code == 200
        assert orjson.loads(await read_all(response)) == {"ok": True}
    request_line, *header_lines = server.heads[0].decode().split("\r\n")
    assert request_line == f"POST {path} HTTP/1.1"
    sent = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines if line)}
    assert sent["x-api-key"] == "k" and sent["content-type"] == "application/json"
    assert server.bodies == [b'{"big": "body"}']


async def test_response_headers_are_case_insensitive_and_aread_reads_the_body() -> None:
    async with Server(ok) as server:
        response = await upstream_send(request(server.url), provider_name="p")
        try:
            assert response.headers["x-trace-id"] == response.headers["X-TRACE-ID"] == "t1"
            assert response.headers.get("Content-Type") == "application/json"
            assert await response.aread() == b'{"ok": true}'
        finally:
            await response.aclose()


async def test_gzip_answers_are_decompressed() -> None:
    payload = b"data: " + b"x" * 5000 + b"\n\n"

    async def gzipped(writer: asyncio.StreamWriter, head: bytes, body: bytes) -> bool:
        writer.write(reply(200, gzip.compress(payload), ("content-encoding", "gzip")))
        return True

    async with Server(gzipped) as server:
        assert await read_all(await upstream_send(request(server.url), provider_name="p")) == payload
        assert b"accept-encoding: gzip" in server.heads[0].lower()


async def test_redirects_are_not_followed_and_cookies_not_kept() -> None:
    async def redirect(writer: asyncio.StreamWriter, head: bytes, body: bytes) -> bool:
        writer.write(reply(307, b"", ("location", "/elsewhere"), ("set-cookie", "session=abc; Path=/")))
        return True

    async with Server(redirect) as server:
        for _ in range(2):
            response = await upstream_send(request(server.url + "/v1/messages"), provider_name="p")
            assert response.status_code == 307
            await read_all(response)
    assert len(server.heads) == 2  # nothing followed the Location
    assert b"cookie" not in server.heads[1].lower()


async def test_a_finished_answer_gives_its_connection_back_to_the_pool() -> None:
    async with Server(ok) as server:
        for _ in range(3):
            await read_all(await upstream_send(request(server.url), provider_name="p"))
    assert server.connections == 1


async def test_closing_an_unfinished_answer_closes_its_connection() -> None:
    async with Server(holds_after(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n")) as server:
        response = await upstream_send(request(server.url), provider_name="p")
        assert await response.read_chunk() == b"hello"
        await response.aclose()
        await response.aclose()  # idempotent
        assert await closed_by_client(server) == 1


# --- errors while sending ---------------------------------------------------------------------------------------


async def test_refused_connection_is_an_api_error() -> None:
    with pytest.raises(ApiError, match="cannot reach provider 'down'"):
        await upstream_send(request(f"http://127.0.0.1:{free_port()}"), provider_name="down")


async def test_no_answer_within_the_read_timeout_is_a_timeout_error() -> None:
    async def silent(writer: asyncio.StreamWriter, head: bytes, body: bytes) -> bool | None:
        return None

    async with Server(silent) as server:
        with pytest.raises(TimeoutError_, match="provider 'slow' did not answer in time") as caught:
            await upstream_send(request(server.url, read=0.2), provider_name="slow")
        assert not isinstance(caught.value, UpstreamReadTimeout)


# --- errors while reading the body ------------------------------------------------------------------------------


async def test_silence_in_the_middle_of_the_body_is_a_read_timeout() -> None:
    async with Server(holds_after(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nfirst")) as server:
        response = await upstream_send(request(server.url, read=0.2), provider_name="p")
        try:
            assert await response.read_chunk() == b"first"
            with pytest.raises(UpstreamReadTimeout) as caught:
                await response.read_chunk()
        finally:
            await response.aclose()
    assert isinstance(caught.value, TimeoutError_)  # a client reading the body directly gets a 504 from it


async def test_a_dropped_connection_in_the_middle_of_the_body_is_a_disconnect() -> None:
    async def drops(writer: asyncio.StreamWriter, head: bytes, body: bytes) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten b")
        await writer.drain()
        return False  # closes the connection 90 bytes short

    async with Server(drops) as server:
        response = await upstream_send(request(server.url), provider_name="p")
        with pytest.raises(UpstreamDisconnected) as caught:
            await read_all(response)
        assert caught.value.message.startswith("upstream connection lost: ")  # and the cause, e.g. ClientPayloadError
        response = await upstream_send(request(server.url), provider_name="p")
        with pytest.raises(UpstreamDisconnected):
            await response.aread()
        await response.aclose()


async def test_error_body_is_capped_and_the_answer_closed() -> None:
    big = b"e" * (http.MAX_ERROR_BODY + 1000)

    async def error(writer: asyncio.StreamWriter, head: bytes, body: bytes) -> bool:
        writer.write(reply(500, big))
        return True

    async with Server(error) as server:
        response = await upstream_send(request(server.url), provider_name="p")
        assert response.status_code == 500
        assert await upstream_read_error_body(response) == big[: http.MAX_ERROR_BODY]
        # closed: its slot is free again (a pool of one would otherwise be full now)
        assert not http._pools[asyncio.get_running_loop()].gate.locked()


# --- the pool's limit -------------------------------------------------------------------------------------------


async def test_a_full_pool_is_a_local_overload_and_frees_up_when_an_answer_closes(settings: Any) -> None:
    settings.LYNKR_UPSTREAM_MAX_CONNECTIONS = 1

    async def held(writer: asyncio.StreamWriter, head: bytes, body: bytes) -> bool | None:
        if b"hold" in body:
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
            return None
        return await ok(writer, head, body)

    async with Server(held) as server:
        holding = await upstream_send(request(server.url, b"hold"), provider_name="p")
        assert await holding.read_chunk() == b"first"
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(UpstreamPoolFullError) as caught:
            await upstream_send(request(server.url, connect=0.2), provider_name="p")
        assert loop.time() - started >= 0.19  # it waited the connect timeout for a free connection
        error = caught.value
        assert isinstance(error, OverloadedError) and error.status == 529 and error.error_type == "overloaded_error"
        assert error.retryable and "LYNKR_UPSTREAM_MAX_CONNECTIONS" in error.message
        assert "connection pool is full" in error.message
        assert server.heads[1:] == []  # it never reached the upstream
        await holding.aclose()
        assert await read_all(await upstream_send(request(server.url), provider_name="p")) == b'{"ok": true}'


async def test_a_waiting_request_gets_the_connection_released_within_its_wait(settings: Any) -> None:
    settings.LYNKR_UPSTREAM_MAX_CONNECTIONS = 1
    async with Server(ok) as server:
        first = await upstream_send(request(server.url), provider_name="p")
        asyncio.get_running_loop().call_later(0.1, first.close)
        second = await upstream_send(request(server.url, connect=2.0), provider_name="p")
        assert await read_all(second) == b'{"ok": true}'


# --- one session per event loop, closed with it -----------------------------------------------------------------


def _send_once(url: str) -> Coroutine[Any, Any, Any]:
    async def go() -> Any:
        response = await upstream_send(request(url + "/v1/messages", orjson.dumps(_BODY)), provider_name="p")
        assert response.status_code == 200
        await read_all(response)
        return http._pools[asyncio.get_running_loop()]

    return go()


_BODY = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


def _unclosed(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


def test_every_loop_has_its_own_pool_closed_when_the_loop_shuts_down() -> None:
    with MockAnthropicUpstream() as mock, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pools: list[Any] = [asyncio.run(_send_once(mock.url)) for _ in range(3)]
        gc.collect()
    assert len({id(p) for p in pools}) == 3
    assert all(p.closed and not p.idle for p in pools)
    assert not any(loop.is_closed() for loop in http._pools)
    assert _unclosed(caught) == []  # every socket was closed while its loop still ran


def test_a_loop_closed_without_shutting_down_is_cleaned_up_by_the_next_one() -> None:
    with MockAnthropicUpstream() as mock:
        loop = asyncio.new_event_loop()
        pool = loop.run_until_complete(_send_once(mock.url))
        loop.close()  # no shutdown_asyncgens(): the pool is still open
        assert not pool.closed and loop in http._pools
        asyncio.run(_send_once(mock.url))
        assert pool.closed and loop not in http._pools
        del loop, pool
        gc.collect()


def test_only_http1_py_speaks_the_wire() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]

    def importers(module: str) -> list[str]:
        return [
            str(path.relative_to(root))
            for package in ("gateway", "providers", "workspace", "lynkr_site", "mcp_app")
            if (root / package).is_dir()
            for path in (root / package).rglob("*.py")
            if any(
                line.lstrip().startswith((f"import {module}", f"from {module}"))
                for line in path.read_text().splitlines()
            )
        ]

    assert importers("httptools") == ["providers/adapters/http1.py"]
    assert importers("aiohttp") == []  # what it replaced


def test_the_upstream_tls_context_verifies_certificates_against_loaded_cas() -> None:
    context = http._ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0


def test_the_upstream_tls_context_trusts_what_httpx_trusted() -> None:
    import httpx  # what _ssl_context() replaced: the same trust must not depend on importing httpx

    ours, theirs = http._ssl_context(), httpx.create_ssl_context(trust_env=False)

    # Compared as sets: OpenSSL sorts a store on its first lookup, so a context that has verified a certificate
    # (test_http1.py's TLS test) lists the same CAs in another order.
    def cas(context: ssl.SSLContext) -> list[str]:
        return sorted(repr(sorted(ca.items())) for ca in context.get_ca_certs())

    assert cas(ours) == cas(theirs)
    assert (ours.verify_mode, ours.check_hostname, ours.options, ours.minimum_version) == (
        theirs.verify_mode,
        theirs.check_hostname,
        theirs.options,
        theirs.minimum_version,
    )
