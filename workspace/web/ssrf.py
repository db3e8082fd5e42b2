"""The SSRF guard of ``web_fetch``: which URLs a model may make the gateway fetch.

The robust check is on the *resolved* addresses, not on the host text: a model can spell 127.0.0.1 as
``2130706433``, ``0177.0.0.1``, ``0x7f.0.0.1``, ``127.1``, ``[::ffff:7f00:1]`` or as a DNS name that resolves to it.
We hand the host to the same resolver libc uses (``getaddrinfo`` accepts the legacy ``inet_aton`` forms), then
refuse unless EVERY returned address is public (or inside a network the admin allowed). The fetcher then connects
to exactly these addresses, so a second, different DNS answer (DNS rebinding) is never used.

Pure: no Django, no httpx. The resolver is a parameter so tests never touch DNS.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import idna

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# (host, port) -> IP address strings. The default asks getaddrinfo (A and AAAA).
Resolver = Callable[[str, int], Sequence[str]]

DEFAULT_PORTS = {"http": 80, "https": 443}
# Any other port only for a host the admin listed in allowed_hosts. Why: with "any public host" allowed, an open
# port choice turns the fetcher into a port scanner and a cross-protocol client (an HTTP request line sent to SMTP,
# Redis, memcached ... on somebody's server). Web pages live on these four; an intranet docs server on :8000 is
# reachable once its name is listed explicitly.
COMMON_PORTS = frozenset({80, 443, 8080, 8443})

_HOST_CHARS = re.compile(r"^[a-z0-9._-]+$")

# Instance metadata endpoints hand out cloud credentials, the main prize of an SSRF: refused even when an admin's
# allow_networks covers them (no documentation lives there).
_METADATA = tuple(
    ipaddress.ip_network(net)
    for net in (
        "169.254.169.254/32",  # AWS, GCP, Azure, OpenStack, DigitalOcean ...
        "169.254.170.2/32",  # AWS ECS task credentials
        "fd00:ec2::254/128",  # AWS IMDS over IPv6
        "100.100.100.200/32",  # Alibaba Cloud
        "192.0.0.192/32",  # Oracle Cloud (classic)
    )
)

# Most specific first; the first match names the reason. Anything not listed but not ``is_global`` is refused too.
_LABELLED: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(net), label)
    for net, label in (
        ("0.0.0.0/8", "an unspecified ('this network') address"),
        ("127.0.0.0/8", "a loopback address"),
        ("10.0.0.0/8", "a private (RFC 1918) address"),
        ("172.16.0.0/12", "a private (RFC 1918) address"),
        ("192.168.0.0/16", "a private (RFC 1918) address"),
        ("100.64.0.0/10", "a carrier-grade NAT (RFC 6598) address"),
        ("169.254.0.0/16", "a link-local address"),
        ("192.0.0.0/24", "an IETF protocol assignment (RFC 6890) address"),
        ("192.0.2.0/24", "a documentation address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("198.18.0.0/15", "a benchmarking (RFC 2544) address"),
        ("224.0.0.0/4", "a multicast address"),
        ("255.255.255.255/32", "the broadcast address"),
        ("240.0.0.0/4", "a reserved address"),
        ("::/128", "an unspecified address"),
        ("::1/128", "a loopback address"),
        ("::/96", "a deprecated IPv4-compatible IPv6 address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local address"),
        ("fc00::/7", "a unique-local address"),
        ("ff00::/8", "a multicast address"),
        ("64:ff9b:1::/48", "a local-use NAT64 address"),
        ("100::/64", "a discard-only address"),
        ("2001:db8::/32", "a documentation address"),
        ("2001::/32", "a Teredo address"),
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052 well-known prefix: the last 32 bits are an IPv4 address


class UrlRefused(ValueError):
    """The URL may not be fetched; the message says why and is safe to show the model."""


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL: where to connect (``addresses``) and what to say in the Host header and TLS SNI (``host``)."""

    url: str
    scheme: str
    host: str  # ASCII (IDNA-encoded), lower-case, no trailing dot; IPv6 without brackets
    port: int
    path: str  # path + query, never empty ("/" at least); the fragment is dropped (it never goes on the wire)
    addresses: tuple[str, ...]

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def resolve_getaddrinfo(host: str, port: int) -> list[str]:
    """All A and AAAA answers for ``host`` (looked up at call time, so tests may replace socket.getaddrinfo)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def check_url(
    url: str,
    *,
    allowed_hosts: Iterable[str] = (),
    allow_networks: Iterable[str] = (),
    resolve: Resolver | None = None,
) -> list[str]:
    """The resolved IP addresses of ``url``'s host, or UrlRefused. See ``check_target`` for the rules."""
    return list(
        check_target(url, allowed_hosts=allowed_hosts, allow_networks=allow_networks, resolve=resolve).addresses
    )


def check_target(
    url: str,
    *,
    allowed_hosts: Iterable[str] = (),
    allow_networks: Iterable[str] = (),
    resolve: Resolver | None = None,
) -> Target:
    """Parse and check ``url``: http(s) only, no credentials, an allowed host and port, only public addresses.

    ``allowed_hosts`` (exact names or ``*.example.com`` patterns; empty = any public host) narrows the hosts;
    ``allow_networks`` (CIDRs) is the only way to reach a private address, e.g. an intranet docs server.
    """
    try:
        parts = urlsplit(url.strip())
        port_given = parts.port
    except ValueError as exc:
        raise UrlRefused(f"{url!r} is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UrlRefused(f"only http and https URLs can be fetched, not {scheme + ':' if scheme else repr(url)}")
    if "@" in parts.netloc:
        raise UrlRefused("URLs with credentials (user:password@host) are not fetched")
    host = normalise_host(parts.hostname or "")
    patterns = [_normalise_pattern(pattern) for pattern in allowed_hosts if pattern.strip()]
    listed = host_matches(host, patterns)
    if patterns and not listed:
        raise UrlRefused(f"{host} is not in the allowed hosts ({', '.join(patterns)})")
    port = port_given if port_given is not None else DEFAULT_PORTS[scheme]
    if port == 0:
        raise UrlRefused("port 0 is not a valid port")
    if port not in COMMON_PORTS and not listed:
        raise UrlRefused(
            f"port {port} is only fetched for hosts listed in the allowed hosts (ports {sorted(COMMON_PORTS)} always)"
        )
    networks = parse_networks(allow_networks)
    resolver = resolve or resolve_getaddrinfo
    try:
        answers = resolver(host, port)
    except (OSError, UnicodeError) as exc:
        raise UrlRefused(f"cannot resolve {host}: {exc}") from None
    addresses = tuple(dict.fromkeys(answers))
    if not addresses:
        raise UrlRefused(f"cannot resolve {host}: no addresses")
    literal = _is_ip(host)
    for address in addresses:
        reason = address_refusal(address, networks)
        if reason:
            shown = address if literal else f"{host} resolves to {address}, which"
            raise UrlRefused(f"{shown} is {reason}")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(url=url.strip(), scheme=scheme, host=host, port=port, path=path, addresses=addresses)


def normalise_host(raw: str) -> str:
    """Lower-case, no trailing dot, IDNA (UTS 46) for non-ASCII names; refuses what no resolver should see."""
    host = raw.strip().lower().rstrip(".")
    if not host:
        raise UrlRefused("the URL has no host")
    if "%" in host:
        # Percent-encoded hosts (and IPv6 zone ids, "%25eth0") are decoded differently by different parsers.
        raise UrlRefused(f"{raw!r}: percent-encoded hosts are not fetched")
    if ":" in host:
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            raise UrlRefused(f"{raw!r} is not a valid host") from None
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise UrlRefused(f"{raw!r} is not a valid internationalised host name ({exc})") from None
    if not _HOST_CHARS.match(host):
        raise UrlRefused(f"{raw!r} is not a valid host")
    return host


def _normalise_pattern(raw: str) -> str:
    pattern = raw.strip().lower().rstrip(".")
    if pattern.startswith("*."):
        return "*." + normalise_host(pattern[2:])
    return normalise_host(pattern)


def host_matches(host: str, patterns: Sequence[str]) -> bool:
    """Exact match, or ``*.example.com`` matching any subdomain (not example.com itself)."""
    for pattern in patterns:
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]):
                return True
        elif host == pattern:
            return True
    return False


def parse_networks(raw: Iterable[str]) -> tuple[IPNetwork, ...]:
    networks: list[IPNetwork] = []
    for entry in raw:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise UrlRefused(f"allowed network {entry!r} is not a CIDR (an admin setting to fix)") from None
    return tuple(networks)


def address_refusal(address: str, allow_networks: Sequence[IPNetwork] = ()) -> str | None:
    """Why ``address`` may not be contacted ("a loopback address" ...), or None when it may."""
    try:
        ip: IPAddress = ipaddress.ip_address(address)
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        ip = ipaddress.IPv6Address(address.split("%", 1)[0])
    if any(ip in net for net in _METADATA):
        return "a cloud metadata address"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        for inner in embedded:
            reason = address_refusal(str(inner), allow_networks)
            if reason:
                return f"an IPv6 address embedding {inner}, {reason}"
        if ip.ipv4_mapped is not None:
            return None  # the embedded IPv4 address is what the socket reaches, and it passed
    if any(ip in net for net in allow_networks if net.version == ip.version):
        return None
    for net, label in _LABELLED:
        if net.version == ip.version and ip in net:
            return label
    if not ip.is_global:
        return "not a public address"
    return None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address delivers to: mapped (::ffff:a.b.c.d), NAT64, 6to4 and Teredo."""
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip in _NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    return found
