"""The SSRF guard: literal IPs in every spelling resolve through libc's numeric parser (no DNS), names through an
injected resolver; every resolved address must be public."""

from __future__ import annotations

import re
import socket

import pytest

from tests.workspace.web.servers import fake_resolver
from workspace.web.ssrf import COMMON_PORTS, UrlRefused, address_refusal, check_target, check_url

PUBLIC = fake_resolver(
    {
        "example.com": ["93.184.215.14"],
        "docs.python.org": ["151.101.0.223", "2a04:4e42::223"],
        "a.b.example.com": ["93.184.215.15"],
        "xn--bcher-kva.example": ["93.184.215.16"],
        "my_host.example": ["93.184.215.17"],
    }
)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://2130706433/", "127.0.0.1, which is a loopback address"),
        ("http://0177.0.0.1/", "127.0.0.1, which is a loopback address"),
        ("http://0x7f.0.0.1/", "127.0.0.1, which is a loopback address"),
        ("http://0x7f000001/", "127.0.0.1, which is a loopback address"),
        ("http://127.1/", "127.0.0.1, which is a loopback address"),
        ("http://127.0.0.1:8080/admin", "127.0.0.1 is a loopback address"),
        ("http://[::1]/", "::1 is a loopback address"),
        ("http://[::ffff:127.0.0.1]/", "embedding 127.0.0.1, a loopback address"),
        ("http://[::ffff:7f00:1]/", "embedding 127.0.0.1, a loopback address"),
        ("http://[::ffff:a9fe:a9fe]/", "embedding 169.254.169.254, a cloud metadata address"),
        ("http://[::127.0.0.1]/", "deprecated IPv4-compatible"),
        ("http://[fe80::1]/", "link-local"),
        ("http://[fd00::1]/", "unique-local"),
        ("http://[fc00::5]/", "unique-local"),
        ("http://[fec0::1]/", "site-local"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "cloud metadata"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
        ("http://100.100.100.200/", "cloud metadata"),
        ("http://192.0.0.192/", "cloud metadata"),
        ("http://169.254.10.1/", "link-local"),
        ("http://100.64.0.1/", "carrier-grade NAT"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://0/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://10.0.0.1/", "private (RFC 1918)"),
        ("http://172.16.5.4/", "private (RFC 1918)"),
        ("http://192.168.1.1/", "private (RFC 1918)"),
        ("http://198.18.0.1/", "benchmarking"),
        ("http://224.0.0.1/", "multicast"),
        ("http://[ff02::1]/", "multicast"),
        ("http://240.0.0.1/", "reserved"),
        ("http://255.255.255.255/", "broadcast"),
        ("http://192.0.2.10/", "documentation"),
        ("http://[64:ff9b::7f00:1]/", "embedding 127.0.0.1, a loopback address"),
        ("http://[64:ff9b::a00:1]/", "embedding 10.0.0.1, a private (RFC 1918) address"),
        ("http://[64:ff9b:1::1]/", "local-use NAT64"),
        ("http://[2002:7f00:1::1]/", "embedding 127.0.0.1, a loopback address"),
        ("http://[2002:c0a8:101::1]/", "embedding 192.168.1.1, a private (RFC 1918) address"),
        ("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "embedding"),  # Teredo (RFC 4380's example)
        ("http://[2001:0:808:808::f7f7:f7f7]/", "a Teredo address"),  # embeds only 8.8.8.8: refused as Teredo
    ],
)
def test_refuses_non_public_addresses_in_every_spelling(url: str, reason: str) -> None:
    with pytest.raises(UrlRefused) as refused:
        check_url(url)
    assert reason in str(refused.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://8.8.8.8/", ["8.8.8.8"]),
        ("https://[2606:4700:4700::1111]/", ["2606:4700:4700::1111"]),
        ("http://[::ffff:8.8.8.8]/", ["::ffff:8.8.8.8"]),  # mapped: the socket reaches 8.8.8.8, which is public
        ("http://[64:ff9b::808:808]/", ["64:ff9b::808:808"]),  # NAT64 of 8.8.8.8
        ("https://example.com/page", ["93.184.215.14"]),
        ("https://docs.python.org/3/", ["151.101.0.223", "2a04:4e42::223"]),
    ],
)
def test_public_addresses_pass_and_are_returned(url: str, expected: list[str]) -> None:
    assert check_url(url, resolve=PUBLIC) == expected


def test_a_name_resolving_to_public_and_private_addresses_is_refused() -> None:
    mixed = fake_resolver({"mixed.example": ["93.184.215.14", "10.0.0.5"]})
    with pytest.raises(UrlRefused) as refused:
        check_url("https://mixed.example/", resolve=mixed)
    assert str(refused.value) == "mixed.example resolves to 10.0.0.5, which is a private (RFC 1918) address"


def test_a_name_resolving_to_loopback_is_refused_with_the_name() -> None:
    rebinder = fake_resolver({"localtest.me": ["127.0.0.1"]})
    with pytest.raises(UrlRefused, match=r"^localtest\.me resolves to 127\.0\.0\.1, which is a loopback address$"):
        check_url("http://localtest.me/", resolve=rebinder)


def test_default_resolver_uses_getaddrinfo_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[str, int]] = []

    def fake_getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list[tuple]:
        asked.append((host, port))
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.168.0.10", port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(UrlRefused, match=re.escape("intranet.example resolves to 192.168.0.10")):
        check_url("https://Intranet.Example./wiki")
    assert asked == [("intranet.example", 443)]


def test_allow_networks_opens_a_private_network_but_not_others() -> None:
    intranet = fake_resolver({"wiki.corp": ["10.1.2.3"], "db.corp": ["10.9.9.9"], "lan.corp": ["192.168.1.2"]})
    assert check_url("http://wiki.corp/", allow_networks=["10.1.0.0/16"], resolve=intranet) == ["10.1.2.3"]
    with pytest.raises(UrlRefused, match=re.escape("10.9.9.9, which is a private")):
        check_url("http://db.corp/", allow_networks=["10.1.0.0/16"], resolve=intranet)
    with pytest.raises(UrlRefused, match=re.escape("192.168.1.2")):
        check_url("http://lan.corp/", allow_networks=["10.0.0.0/8"], resolve=intranet)
    # A mapped IPv6 form of an allowed IPv4 address is the same destination.
    assert check_url("http://[::ffff:10.1.2.3]/", allow_networks=["10.1.0.0/16"]) == ["::ffff:10.1.2.3"]


def test_metadata_addresses_stay_refused_even_inside_allowed_networks() -> None:
    with pytest.raises(UrlRefused, match="cloud metadata"):
        check_url("http://169.254.169.254/", allow_networks=["169.254.0.0/16"])
    with pytest.raises(UrlRefused, match="cloud metadata"):
        check_url("http://[fd00:ec2::254]/", allow_networks=["fc00::/7"])
    assert check_url("http://169.254.10.10/", allow_networks=["169.254.0.0/16"]) == ["169.254.10.10"]


def test_a_bad_allowed_network_setting_is_reported() -> None:
    with pytest.raises(UrlRefused, match=re.escape("'10.0.0.0/33' is not a CIDR")):
        check_url("http://8.8.8.8/", allow_networks=["10.0.0.0/33"])


def test_allowed_hosts_exact_and_wildcard_case_insensitive() -> None:
    allowed = ["docs.python.org", "*.Example.com."]
    assert check_url("https://DOCS.python.org./3/", allowed_hosts=allowed, resolve=PUBLIC)
    assert check_url("https://a.b.example.com/x", allowed_hosts=allowed, resolve=PUBLIC)
    for refused_url in (
        "https://example.com/",  # "*.example.com" is subdomains only
        "https://evilexample.com/",
        "https://docs.python.org.evil.com/",
        "https://python.org/",
    ):
        with pytest.raises(UrlRefused, match="is not in the allowed hosts"):
            check_url(refused_url, allowed_hosts=allowed, resolve=PUBLIC)


def test_an_allowed_host_must_still_resolve_to_public_addresses() -> None:
    with pytest.raises(UrlRefused, match="loopback"):
        check_url("http://127.0.0.1/", allowed_hosts=["127.0.0.1"])


@pytest.mark.parametrize(
    "url",
    ["http://user:pw@example.com/", "http://user@example.com/", "http://:@example.com/", "http://a.com\\@example.com/"],
)
def test_credentials_are_refused(url: str) -> None:
    with pytest.raises(UrlRefused, match="credentials"):
        check_url(url, resolve=PUBLIC)


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "gopher://example.com:70/_GET",
        "ftp://example.com/",
        "javascript:alert(1)",
        "dict://example.com:11211/",
        "//example.com/",
        "example.com/path",
    ],
)
def test_only_http_and_https(url: str) -> None:
    with pytest.raises(UrlRefused, match="only http and https"):
        check_url(url, resolve=PUBLIC)


def test_ports_beyond_the_common_ones_need_an_explicitly_allowed_host() -> None:
    for port in sorted(COMMON_PORTS):
        assert check_url(f"http://example.com:{port}/", resolve=PUBLIC) == ["93.184.215.14"]
    with pytest.raises(UrlRefused, match="port 6379 is only fetched for hosts listed"):
        check_url("http://example.com:6379/", resolve=PUBLIC)
    assert check_url("http://example.com:6379/", allowed_hosts=["example.com"], resolve=PUBLIC)
    assert check_url("http://a.b.example.com:8000/", allowed_hosts=["*.example.com"], resolve=PUBLIC)
    with pytest.raises(UrlRefused, match="not a valid URL"):
        check_url("http://example.com:99999/", resolve=PUBLIC)
    with pytest.raises(UrlRefused, match="port 0"):
        check_url("http://example.com:0/", allowed_hosts=["example.com"], resolve=PUBLIC)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://%31%32%37.0.0.1/", "percent-encoded"),
        ("http://[fe80::1%25eth0]/", "percent-encoded"),
        ("http:///path", "no host"),
        ("http://exa mple.com/", "not a valid host"),
        ("http://[::1/", "not a valid URL"),
    ],
)
def test_malformed_hosts_are_refused(url: str, message: str) -> None:
    with pytest.raises(UrlRefused, match=message):
        check_url(url, resolve=PUBLIC)


def test_internationalised_names_are_idna_encoded_before_resolving() -> None:
    target = check_target("https://Bücher.example/katalog?q=1#top", resolve=PUBLIC)
    assert target.host == "xn--bcher-kva.example"
    assert target.addresses == ("93.184.215.16",)
    assert target.path == "/katalog?q=1"
    assert target.host_header == "xn--bcher-kva.example"


def test_ascii_names_with_underscores_are_accepted() -> None:
    assert check_url("http://My_Host.example/", resolve=PUBLIC) == ["93.184.215.17"]


def test_unresolvable_names_are_refused_clearly() -> None:
    def failing(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(UrlRefused, match=r"cannot resolve nowhere\.invalid"):
        check_url("http://nowhere.invalid/", resolve=failing)
    with pytest.raises(UrlRefused, match="no addresses"):
        check_url("http://example.com/", resolve=lambda host, port: [])


def test_target_host_header_carries_non_default_ports_and_ipv6_brackets() -> None:
    assert check_target("http://example.com:8080/", resolve=PUBLIC).host_header == "example.com:8080"
    assert check_target("https://example.com:443", resolve=PUBLIC).host_header == "example.com"
    v6 = check_target("https://[2606:4700:4700::1111]:8443/x")
    assert (v6.host_header, v6.path, v6.port) == ("[2606:4700:4700::1111]:8443", "/x", 8443)


def test_address_refusal_strips_ipv6_scope_ids_and_rejects_garbage() -> None:
    assert address_refusal("fe80::1%eth0") == "a link-local address"
    assert address_refusal("not-an-ip") == "not an IP address"
    assert address_refusal("1.1.1.1") is None
