"""web_fetch against real loopback servers. Names resolve through an injected resolver to 127.0.0.x, allowed via
allow_networks, so the path "check, then connect to the checked IP with the real Host header" runs for real."""

from __future__ import annotations

import gzip
import re
import ssl
from urllib.parse import urlsplit

import pytest

from tests.workspace.web.servers import LoopbackServer, Reply, fake_resolver, make_certificate
from workspace.web.fetch import FetchFailed, default_tls_context, web_fetch
from workspace.web.ssrf import UrlRefused

DOCS = "docs.example.test"
RESOLVE = fake_resolver({DOCS: ["127.0.0.1"]})


def fetch(url: str, **overrides: object):
    options: dict[str, object] = {
        "max_bytes": 100_000,
        "timeout": 5.0,
        "allowed_hosts": [DOCS, "127.0.0.2"],
        "allow_networks": ["127.0.0.1/32"],
        "resolve": RESOLVE,
    }
    options.update(overrides)
    return web_fetch(url, **options)  # type: ignore[arg-type]


def html(body: str, status: int = 200, **headers: str) -> Reply:
    return Reply(status, body.encode(), {"Content-Type": "text/html; charset=utf-8", **headers})


def redirect(location: str, status: int = 302) -> Reply:
    return Reply(status, b"", {"Location": location})


def test_connects_to_the_checked_address_with_the_real_host_header(server: LoopbackServer, loopback_only) -> None:
    server.routes["/page"] = html("<title>Docs</title><h1>Intro</h1><p>Hello <a href='/x'>there</a>.</p>")
    calls: list[str] = []

    def counting(host: str, port: int) -> list[str]:
        calls.append(host)
        return RESOLVE(host, port)

    result = fetch(f"http://{DOCS}:{server.port}/page?lang=en#section", resolve=counting)

    assert (result.status, result.title, result.truncated) == (200, "Docs", False)
    assert result.text == "# Intro\n\nHello there."
    assert result.content_type == "text/html; charset=utf-8"
    assert result.final_url == result.url == f"http://{DOCS}:{server.port}/page?lang=en#section"
    assert [(seen.path, seen.headers["host"]) for seen in server.seen] == [("/page?lang=en", f"{DOCS}:{server.port}")]
    assert server.seen[0].headers["user-agent"].startswith("Lynkr-web_fetch")
    assert calls == [DOCS]  # resolved once, by the guard ...
    assert DOCS not in loopback_only  # ... and httpx never resolved the name again (no rebinding window)


def test_redirects_are_followed_and_rechecked(server: LoopbackServer) -> None:
    server.routes["/old"] = redirect("/middle", 301)
    server.routes["/middle"] = redirect(f"http://{DOCS}:{server.port}/new", 307)
    server.routes["/new"] = Reply(200, b"plain words", {"Content-Type": "text/plain"})

    result = fetch(f"http://{DOCS}:{server.port}/old")

    assert (result.status, result.text, result.title) == (200, "plain words", "")
    assert result.final_url == f"http://{DOCS}:{server.port}/new"
    assert [seen.path for seen in server.seen] == ["/old", "/middle", "/new"]


def test_redirect_to_a_loopback_address_outside_the_allowed_network_is_refused(server: LoopbackServer) -> None:
    with LoopbackServer("127.0.0.2") as second:
        second.routes["/secret"] = Reply(200, b"internal", {"Content-Type": "text/plain"})
        server.routes["/go"] = redirect(second.url("/secret"))

        with pytest.raises(UrlRefused) as refused:
            fetch(f"http://{DOCS}:{server.port}/go")

        assert str(refused.value) == (
            f"http://{DOCS}:{server.port}/go redirected to {second.url('/secret')}: 127.0.0.2 is a loopback address"
        )
        assert second.seen == []
    assert [seen.path for seen in server.seen] == ["/go"]


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/iam/", "169.254.169.254 is a cloud metadata address"),
        ("http://[::ffff:127.0.0.2]/", "embedding 127.0.0.2, a loopback address"),
        ("http://10.0.0.1/", "private (RFC 1918)"),
        ("file:///etc/passwd", "only http and https"),
        ("http://admin:pw@docs.example.test/", "credentials"),
    ],
)
def test_redirects_to_forbidden_places_are_refused(server: LoopbackServer, location: str, reason: str) -> None:
    server.routes["/go"] = redirect(location)
    listed = [DOCS, urlsplit(location).hostname or ""]  # listed, so only the address (or scheme ...) can refuse
    with pytest.raises(UrlRefused, match="redirected to") as refused:
        fetch(f"http://{DOCS}:{server.port}/go", allowed_hosts=listed)
    assert reason in str(refused.value)


def test_the_redirect_chain_is_limited(server: LoopbackServer) -> None:
    def chain(path: str) -> Reply:
        left = int(path.rsplit("/", 1)[1])
        return redirect(f"/chain/{left - 1}") if left else Reply(200, b"arrived", {"Content-Type": "text/plain"})

    server.routes.update({f"/chain/{n}": chain for n in range(10)})

    assert fetch(f"http://{DOCS}:{server.port}/chain/5").text == "arrived"  # exactly five redirects
    assert len(server.seen) == 6
    server.seen.clear()
    with pytest.raises(FetchFailed, match=r"too many redirects \(more than 5\)"):
        fetch(f"http://{DOCS}:{server.port}/chain/6")
    assert len(server.seen) == 6  # the sixth redirect is not followed
    with pytest.raises(FetchFailed, match=r"more than 1\)"):
        fetch(f"http://{DOCS}:{server.port}/chain/2", max_redirects=1)


def test_the_body_is_cut_at_max_bytes(server: LoopbackServer) -> None:
    server.routes["/big"] = Reply(200, b"a" * 10_000, {"Content-Type": "text/plain"})
    server.routes["/small"] = Reply(200, b"b" * 1_000, {"Content-Type": "text/plain"})

    big = fetch(f"http://{DOCS}:{server.port}/big", max_bytes=1_000)
    small = fetch(f"http://{DOCS}:{server.port}/small", max_bytes=1_000)

    assert (len(big.text), big.truncated) == (1_000, True)
    assert (len(small.text), small.truncated) == (1_000, False)


def test_compressed_bodies_are_bounded_after_decompression(server: LoopbackServer) -> None:
    bomb = gzip.compress(b"z" * 5_000_000)  # ~5 KB on the wire, 5 MB decoded
    server.routes["/gz"] = Reply(200, bomb, {"Content-Type": "text/plain", "Content-Encoding": "gzip"})
    server.routes["/br"] = Reply(200, b"...", {"Content-Type": "text/plain", "Content-Encoding": "br"})

    result = fetch(f"http://{DOCS}:{server.port}/gz", max_bytes=4_096)

    assert (result.text, result.truncated) == ("z" * 4_096, True)
    assert server.seen[0].headers["accept-encoding"] == "gzip, deflate"
    with pytest.raises(FetchFailed, match="Content-Encoding 'br'"):
        fetch(f"http://{DOCS}:{server.port}/br")


def test_a_server_that_never_answers_times_out(silent_port: int) -> None:
    with pytest.raises(FetchFailed, match=r"timed out after 0.5 s"):
        fetch(f"http://{DOCS}:{silent_port}/", timeout=0.5)


def test_a_closed_port_is_a_clear_connection_error(closed_port: int) -> None:
    with pytest.raises(FetchFailed, match=f"could not connect to {DOCS}"):
        fetch(f"http://{DOCS}:{closed_port}/")


def test_the_next_checked_address_is_tried_when_one_refuses_connections(server: LoopbackServer) -> None:
    server.routes["/"] = Reply(200, b"ok", {"Content-Type": "text/plain"})
    two = fake_resolver({DOCS: ["127.0.0.3", "127.0.0.1"]})  # nothing listens on 127.0.0.3

    result = fetch(f"http://{DOCS}:{server.port}/", resolve=two, allow_networks=["127.0.0.0/8"])

    assert result.text == "ok"


@pytest.mark.parametrize("content_type", ["image/png", "application/pdf", "application/octet-stream", ""])
def test_non_text_content_is_refused(server: LoopbackServer, content_type: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    server.routes["/file"] = Reply(200, b"\x89PNG\r\n", headers)
    with pytest.raises(FetchFailed, match="only text pages") as failed:
        fetch(f"http://{DOCS}:{server.port}/file")
    assert (content_type or "no Content-Type") in str(failed.value)


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/vnd.api+json", "application/xml", "text/csv", "image/svg+xml"]
)
def test_text_like_content_passes_through_unchanged(server: LoopbackServer, content_type: str) -> None:
    body = '{"a": [1, 2],\n  "b": "<p>x</p>"}'
    server.routes["/data"] = Reply(200, body.encode(), {"Content-Type": content_type})
    result = fetch(f"http://{DOCS}:{server.port}/data")
    assert (result.text, result.title, result.content_type) == (body, "", content_type)


def test_charsets_from_the_header_or_the_meta_tag(server: LoopbackServer) -> None:
    server.routes["/latin1"] = Reply(200, "café".encode("latin-1"), {"Content-Type": "text/plain; charset=ISO-8859-1"})
    meta = '<html><head><meta charset="windows-1252"><title>Caf\xe9</title></head><body>d\xe9j\xe0</body></html>'
    server.routes["/meta"] = Reply(200, meta.encode("cp1252"), {"Content-Type": "text/html"})
    server.routes["/bogus"] = Reply(200, "ünïcode".encode(), {"Content-Type": "text/plain; charset=no-such-codec"})

    assert fetch(f"http://{DOCS}:{server.port}/latin1").text == "café"
    page = fetch(f"http://{DOCS}:{server.port}/meta")
    assert (page.title, page.text) == ("Café", "déjà")
    assert fetch(f"http://{DOCS}:{server.port}/bogus").text == "ünïcode"


def test_error_pages_are_returned_with_their_status(server: LoopbackServer) -> None:
    result = fetch(f"http://{DOCS}:{server.port}/missing")
    assert (result.status, result.text) == (404, "not found")


def test_https_verifies_the_certificate_against_the_real_name(loopback_only) -> None:
    server_tls, client_tls = make_certificate(DOCS)
    with LoopbackServer(tls=server_tls) as secure:
        secure.routes["/"] = html("<title>Secure</title><p>over TLS</p>")

        result = fetch(secure.url("/", host=DOCS, scheme="https"), tls=client_tls)

        assert (result.title, result.text) == ("Secure", "over TLS")
        assert secure.seen[0].headers["host"] == f"{DOCS}:{secure.port}"


def test_https_refuses_a_certificate_for_another_name(loopback_only) -> None:
    server_tls, client_tls = make_certificate("other.example.test")
    with LoopbackServer(tls=server_tls) as secure:
        with pytest.raises(FetchFailed, match="could not connect") as failed:
            fetch(secure.url("/", host=DOCS, scheme="https"), tls=client_tls)
        assert secure.seen == []
    assert "certificate" in str(failed.value).lower() or "hostname" in str(failed.value).lower()


def test_refusals_happen_before_any_connection(server: LoopbackServer) -> None:
    with pytest.raises(UrlRefused, match=re.escape("127.0.0.1 is a loopback address")):
        web_fetch(server.url("/"), max_bytes=1000, timeout=1, allowed_hosts=["127.0.0.1"])
    with pytest.raises(UrlRefused, match=f"port {server.port} is only fetched for hosts listed"):
        web_fetch(server.url("/"), max_bytes=1000, timeout=1, allow_networks=["127.0.0.1/32"])
    assert server.seen == []


def test_proxy_environment_variables_are_ignored(server: LoopbackServer, closed_port: int, monkeypatch) -> None:
    server.routes["/"] = Reply(200, b"direct", {"Content-Type": "text/plain"})
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{closed_port}")
    assert fetch(f"http://{DOCS}:{server.port}/").text == "direct"


def test_the_default_trust_store_verifies_and_is_built_once() -> None:
    context = default_tls_context()
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)
    assert default_tls_context() is context
