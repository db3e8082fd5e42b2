"""The upstream wire (providers/adapters/http1.py) through ``upstream_send``, against real loopback servers that
script each answer byte for byte (the server and helpers of test_http.py)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import zlib
from pathlib import Path
from typing import Any

import pytest

from gateway.wire.errors import ApiError
from providers.adapters import http, http1
from providers.adapters.http import UpstreamDisconnected, upstream_send
from tests.providers.adapters.test_http import Server, closed_by_client, holds_after, ok, read_all, reply, request


async def test_the_request_head_carries_defaults_unless_the_caller_set_them() -> None:
    async with Server(ok) as server:
        await read_all(await upstream_send(request(server.url + "/v1/x?a=1"), provider_name="p"))
        port = server.url.rsplit(":", 1)[1]
        head = server.heads[0].decode()
        assert head.startswith("POST /v1/x?a=1 HTTP/1.1\r\n")
        for line in (
            f"Host: 127.0.0.1:{port}",
            "Content-Length: 8",
            "Accept-Encoding: gzip, deflate",
            "User-Agent: lynkr",
        ):
            assert f"\r\n{line}\r\n" in head
        own = (("Host", "upstream.example"), ("user-agent", "me/1"), ("Accept-Encoding", "identity"))
        mine = http.UpstreamRequest("POST", server.url, own, b"{}", connect_timeout=2, read_timeout=5)
        await read_all(await upstream_send(mine, provider_name="p"))
        head = server.heads[1].decode().lower()
        assert head.count("host:") == head.count("user-agent:") == head.count("accept-encoding:") == 1
        assert "host: upstream.example" in head and "user-agent: me/1" in head and "accept-encoding: identity" in head


@pytest.mark.parametrize(
    "header",
    [("x-evil", "a\r\nx-injected: 1"), ("x-evil", "a\nb"), ("x-evil", "a\x00"), ("bad name", "v"), ("x:y", "v")],
)
async def test_a_header_that_could_split_the_request_is_refused_before_anything_is_sent(header: Any) -> None:
    async with Server(ok) as server:
        bad = http.UpstreamRequest("POST", server.url, (header,), b"{}", connect_timeout=2, read_timeout=5)
        with pytest.raises(ApiError, match="invalid upstream request header"):
            await upstream_send(bad, provider_name="p")
        assert server.connections == 0
        # the slot was given back
        assert not http._pools[asyncio.get_running_loop()].gate.locked()


def test_urls_become_a_pool_key_a_host_header_and_a_target() -> None:
    assert http._target("https://api.example.com/v1/chat?x=%2F#frag") == (
        ("https", "api.example.com", 443),
        "api.example.com",
        "/v1/chat?x=%2F",
    )
    assert http._target("http://[::1]:8080") == (("http", "::1", 8080), "[::1]:8080", "/")
    assert http._target("http://h:80/p")[1] == "h"
    for bad in ("ftp://h/x", "http:///nohost", "/relative"):
        with pytest.raises(ValueError, match="not an http"):
            http._target(bad)


async def test_a_url_that_is_not_http_is_an_api_error() -> None:
    with pytest.raises(ApiError, match="not an http"):
        await upstream_send(request("ftp://127.0.0.1/x"), provider_name="p")


async def test_an_interim_answer_is_skipped() -> None:
    async def early_hints(writer: asyncio.StreamWriter, head: bytes, body: bytes) -> bool:
        writer.write(b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n" + reply(201, b"made", ("x-final", "1")))
        return True

    async with Server(early_hints) as server:
        response = await upstream_send(request(server.url), provider_name="p")
        assert response.status_code == 201 and response.headers.get("x-final") == "1" and "link" not in response.headers
        assert await read_all(response) == b"made"


async def test_an_answer_without_a_length_ends_with_its_connection_which_is_not_reused() -> None:
    async def until_close(writer: asyncio.StreamWriter, head: bytes, body: bytes) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nall of it")
        await writer.drain()
        return False

    async with Server(until_close) as server:
        for _ in range(2):
            assert await read_all(await upstream_send(request(server.url), provider_name="p")) == b"all of it"
    assert server.connections == 2


async def test_connection_close_and_http_1_0_answers_are_not_reused() -> None:
    async def closing(writer: asyncio.StreamWriter, head: bytes, body: bytes) -> bool:
        if len(head) % 2:  # either way of saying it
            writer.write(reply(200, b"ok", ("connection", "close")))
        else:
            writer.write(b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        return False

    async with Server(closing) as server:
        for body in (b"1", b"22", b"1"):
            assert await read_all(await upstream_send(request(server.url, body), provider_name="p")) == b"ok"
    assert server.connections == 3


async def test_deflate_answers_are_decompressed_and_a_broken_one_is_a_disconnect() -> None:
    payload = b'{"text": "' + b"y" * 4000 + b'"}'

    async def deflated(writer: asyncio.StreamWriter, head: bytes, body: bytes) -> bool:
        data = zlib.compress(payload) if body == b"good" else b"not deflate at all"
        writer.write(reply(200, data, ("content-encoding", "deflate")))
        return True

    async with Server(deflated) as server:
        assert await read_all(await upstream_send(request(server.url, b"good"), provider_name="p")) == payload
        response = await upstream_send(request(server.url, b"bad"), provider_name="p")
        with pytest.raises(UpstreamDisconnected, match="malformed compressed answer"):
            await read_all(response)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"SMTP ready\r\n\r\n", "malformed answer"),
        (b"HTTP/1.1 200 OK\r\n" + b"x-big: " + b"a" * (http1.MAX_HEAD_BYTES + 10) + b"\r\n\r\n", "answer head over"),
        (b"HTTP/1.1 200 OK\r\ncontent-le", "closed by the upstream"),
    ],
)
async def test_an_answer_that_cannot_be_read_is_an_api_error(answer: bytes, message: str) -> None:
    async def broken(writer: asyncio.StreamWriter, head: bytes, body: bytes) -> bool:
        writer.write(answer)
        await writer.drain()
        return False

    async with Server(broken) as server:
        with pytest.raises(ApiError, match=f"cannot reach provider 'p': {message}"):
            await upstream_send(request(server.url), provider_name="p")
        assert not http._pools[asyncio.get_running_loop()].gate.locked()


async def test_a_malformed_body_after_a_good_head_is_a_disconnect() -> None:
    bad_chunking = holds_after(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nnot hex\r\n")
    async with Server(bad_chunking) as server:
        response = await upstream_send(request(server.url), provider_name="p")
        with pytest.raises(UpstreamDisconnected, match="malformed answer"):
            await read_all(response)


async def test_an_idle_connection_the_upstream_closed_or_talked_on_is_not_reused() -> None:
    async def then_close(writer: asyncio.StreamWriter, head: bytes, body: bytes) -> bool:
        writer.write(reply(200, b"ok"))
        await writer.drain()
        if body == b"close":
            return False
        if body == b"chatter":
            writer.write(b"HTTP/1.1 200 OK\r\n")  # bytes nobody asked for
        return True

    async with Server(then_close) as server:
        for body in (b"close", b"chatter", b"again"):
            assert await read_all(await upstream_send(request(server.url, body), provider_name="p")) == b"ok"
            await asyncio.sleep(0.05)  # the upstream's close or chatter arrives while the connection is idle
    assert server.connections == 3


async def test_an_idle_connection_past_the_keepalive_is_not_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "KEEPALIVE_SECONDS", 0.0)
    async with Server(ok) as server:
        for _ in range(2):
            await read_all(await upstream_send(request(server.url), provider_name="p"))
    assert server.connections == 2


async def test_an_answer_nobody_reads_stops_the_socket_being_read() -> None:
    payload = bytes(range(256)) * (4 * http1.READ_HIGH_WATER // 256)

    async def big(writer: asyncio.StreamWriter, head: bytes, body: bytes) -> bool:
        writer.write(reply(200, payload))
        await writer.drain()
        return True

    async with Server(big) as server:
        response = await upstream_send(request(server.url), provider_name="p")
        connection = response._connection
        for _ in range(100):
            if connection._paused:
                break
            await asyncio.sleep(0.01)
        assert connection._paused and connection._buffered <= http1.READ_HIGH_WATER + 256 * 1024
        assert await read_all(response) == payload  # reading resumes it: nothing lost


async def test_a_connect_that_takes_too_long_is_an_api_error(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()

    async def never(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(10)

    monkeypatch.setattr(loop, "create_connection", never)
    with pytest.raises(ApiError, match="did not accept a connection in time"):
        await upstream_send(request("http://127.0.0.1:9", connect=0.05), provider_name="p")
    assert not http._pools[loop].gate.locked()


async def test_a_response_dropped_unclosed_frees_its_slot_and_closes_its_socket() -> None:
    async with Server(holds_after(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")) as server:
        response = await upstream_send(request(server.url), provider_name="p")
        connection = response._connection
        del response
        assert connection.lost and not http._pools[asyncio.get_running_loop()].gate.locked()
        assert await closed_by_client(server) == 1


def test_the_wire_works_on_uvloop() -> None:
    """On uvloop (``lynkr serve --server uvicorn`` with its extra), whose transports are not asyncio.Transport
    subclasses, a new connection and a reused one both answer."""
    import uvloop

    async def go() -> int:
        async with Server(ok) as server:
            for _ in range(3):
                response = await upstream_send(request(server.url), provider_name="p")
                assert response.status_code == 200 and await read_all(response) == b'{"ok": true}'
        return server.connections

    assert uvloop.run(go()) == 1


def test_headers_are_case_insensitive_and_repeated_ones_joined() -> None:
    headers = http1.Headers([(b"X-A", b"1"), (b"x-a", b"2"), (b"Content-Type", b"text/plain")])
    assert headers["x-a"] == headers["X-A"] == "1, 2"
    assert list(headers) == ["x-a", "content-type"] and len(headers) == 2
    assert headers.get("missing") is None


# --- TLS ----------------------------------------------------------------------------------------------------------


def _certificates(tmp: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for localhost / 127.0.0.1 signed by it (cryptography, no network)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(name("test CA")).issuer_name(name("test CA"))
        .public_key(ca_key.public_key()).serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    alt = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cert = (
        x509.CertificateBuilder().subject_name(name("localhost")).issuer_name(ca.subject).public_key(key.public_key())
        .serial_number(2).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1)).add_extension(alt, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    paths = tmp / "ca.pem", tmp / "cert.pem", tmp / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


async def test_https_verifies_the_upstreams_certificate_with_sni(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, cert, key = _certificates(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    names: list[str | None] = []
    server_context.sni_callback = lambda sock, name, ctx: names.append(name)  # type: ignore[assignment,misc,func-returns-value]
    served: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        served.append(head + await reader.readexactly(8))
        writer.write(reply(200, b"secret ok"))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    try:
        # Not trusted: the default context (certifi's CAs) refuses the test CA's certificate.
        with pytest.raises(ApiError, match="cannot reach provider 'p': SSLCertVerificationError"):
            await upstream_send(request(f"https://localhost:{port}/v1"), provider_name="p")
        trusting = ssl.create_default_context(cafile=str(ca))
        monkeypatch.setattr(http, "_ssl_context", lambda: trusting)
        response = await upstream_send(request(f"https://localhost:{port}/v1"), provider_name="p")
        assert response.status_code == 200 and await read_all(response) == b"secret ok"
    finally:
        server.close()
        await server.wait_closed()
    assert names[-1] == "localhost"  # SNI carried the URL's host
    assert served[-1].startswith(b"POST /v1 HTTP/1.1\r\n") and f"Host: localhost:{port}".encode() in served[-1]
