"""``web_fetch``: GET one public web page as text, behind the SSRF guard of ``ssrf.py``.

Every hop (the first URL and each redirect) is checked and then connected to the very addresses the check resolved:
the request goes to ``http(s)://<checked IP>:<port>/path`` with the Host header (and, for https, the TLS SNI and
certificate check) naming the real host. A DNS answer that changes between check and connect (rebinding) is
therefore never used, and proxies from the environment are ignored (``trust_env=False``), so nothing reroutes it.
"""

from __future__ import annotations

import codecs
import functools
import logging
import re
import ssl
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from workspace.web.html_text import html_to_text
from workspace.web.ssrf import Resolver, Target, UrlRefused, check_target

if TYPE_CHECKING:
    # Imported where used: loading the tools must not load httpx (~5 MB RSS with rich and pygments), only a fetch.
    import httpx

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "Lynkr-web_fetch/1.0"
_TEXT_TYPES = frozenset({"application/json", "application/xml", "application/xhtml+xml", "application/javascript"})
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9._:-]+)""", re.IGNORECASE)
_CHUNK = 64 * 1024


class FetchFailed(Exception):
    """The page could not be fetched (network, timeout, refused content); the message is for the model."""


@dataclass(frozen=True, slots=True)
class FetchResult:
    url: str
    final_url: str
    status: int
    content_type: str
    text: str
    truncated: bool
    title: str


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    content_type: str
    location: str
    body: bytes
    charset: str | None
    truncated: bool


def web_fetch(
    url: str,
    *,
    max_bytes: int,
    timeout: float,
    allowed_hosts: Iterable[str] = (),
    allow_networks: Iterable[str] = (),
    resolve: Resolver | None = None,
    tls: ssl.SSLContext | None = None,
    max_redirects: int = MAX_REDIRECTS,
) -> FetchResult:
    """Fetch ``url`` (following up to ``max_redirects`` redirects, each re-checked) and return it as text.

    ``max_bytes`` bounds the (decompressed) body read; ``timeout`` bounds the whole call (each network wait is
    bounded by what is left, and reading stops once it is used up). ``tls`` replaces the trust store (tests, an
    intranet CA); certificates are always verified. Raises ``UrlRefused`` when the guard refuses a hop and
    ``FetchFailed`` for everything else.
    """
    verify = tls or default_tls_context()
    allowed_hosts, allow_networks = tuple(allowed_hosts), tuple(allow_networks)
    deadline = time.monotonic() + timeout
    current = url
    for hop in range(max_redirects + 1):
        try:
            target = check_target(current, allowed_hosts=allowed_hosts, allow_networks=allow_networks, resolve=resolve)
        except UrlRefused as exc:
            if hop == 0:
                raise
            raise UrlRefused(f"{url} redirected to {current}: {exc}") from None
        reply = _get(target, deadline=deadline, timeout=timeout, verify=verify, max_bytes=max_bytes)
        if reply.status in REDIRECT_STATUSES and reply.location:
            if hop == max_redirects:
                raise FetchFailed(f"too many redirects (more than {max_redirects}) fetching {url}")
            current = urljoin(target.url, reply.location)
            logger.debug("web_fetch: %s redirects to %s", target.url, current)
            continue
        return _result(url, target, reply)
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


def _get(target: Target, *, deadline: float, timeout: float, verify: ssl.SSLContext, max_bytes: int) -> _Reply:
    """One GET to the checked addresses in turn (the next only when connecting to one fails)."""
    import httpx

    last_error: Exception | None = None
    for address in target.addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            return _get_from(
                target, address, remaining=remaining, deadline=deadline, verify=verify, max_bytes=max_bytes
            )
        except httpx.ConnectTimeout:
            break
        except httpx.ConnectError as exc:
            last_error = exc
            logger.debug("web_fetch: connecting to %s for %s failed: %s", address, target.host, exc)
        except httpx.TimeoutException:
            break
        except httpx.HTTPError as exc:
            raise FetchFailed(f"fetching {target.url} failed: {exc or type(exc).__name__}") from None
    if last_error is not None and deadline - time.monotonic() > 0:
        raise FetchFailed(f"could not connect to {target.host}: {last_error}")
    raise FetchFailed(f"timed out after {timeout:g} s fetching {target.url}")


def _get_from(
    target: Target, address: str, *, remaining: float, deadline: float, verify: ssl.SSLContext, max_bytes: int
) -> _Reply:
    import httpx

    host = f"[{address}]" if ":" in address else address
    request_url = httpx.URL(f"{target.scheme}://{host}:{target.port}{target.path}")
    if request_url.host != address:  # the path cannot move the authority, but make sure of what we connect to
        raise FetchFailed(f"{target.url} is not a URL that can be fetched")
    headers = {
        "Host": target.host_header,
        "User-Agent": USER_AGENT,
        "Accept": "text/html,application/xhtml+xml,application/json;q=0.9,text/*;q=0.8",
        "Accept-Encoding": "gzip, deflate",
    }
    # httpcore reads "sni_hostname" for the TLS server_hostname: SNI and certificate checks use the real name.
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    # A client per hop: a pooled connection must never carry one host's request over another's TLS session.
    with httpx.Client(trust_env=False, follow_redirects=False, verify=verify, timeout=remaining) as client:
        request = client.build_request("GET", request_url, headers=headers, extensions=extensions)
        response = client.send(request, stream=True)
        try:
            return _read(target, response, deadline=deadline, max_bytes=max_bytes)
        finally:
            response.close()


def _read(target: Target, response: httpx.Response, *, deadline: float, max_bytes: int) -> _Reply:
    import httpx

    content_type = response.headers.get("content-type", "")
    location = response.headers.get("location", "")
    if response.status_code in REDIRECT_STATUSES and location:
        return _Reply(response.status_code, content_type, location, b"", None, truncated=False)
    media = content_type.split(";", 1)[0].strip().lower()
    if not is_text_type(media):
        shown = media or "no Content-Type"
        raise FetchFailed(f"{target.url} answered {shown}: only text pages (HTML, plain text, JSON, XML) are fetched")
    decoder = _Decoder(response.headers.get("content-encoding", ""))
    body = bytearray()
    truncated = False
    for chunk in response.iter_raw(_CHUNK):
        body += decoder.feed(chunk, limit=max_bytes - len(body) + 1)
        if len(body) > max_bytes:
            del body[max_bytes:]
            truncated = True
            break
        if time.monotonic() > deadline:
            raise httpx.ReadTimeout("the overall deadline passed while reading")
    return _Reply(response.status_code, content_type, "", bytes(body), response.charset_encoding, truncated)


@functools.cache
def default_tls_context() -> ssl.SSLContext:
    """httpx's default trust (certifi, or SSL_CERT_FILE / SSL_CERT_DIR when set), built once: loading the bundle
    costs ~20 ms, and a context is safe to share between threads."""
    import httpx

    return httpx.create_ssl_context(verify=True, trust_env=True)


def is_text_type(media: str) -> bool:
    """text/*, JSON, XML and XHTML (including vendor ``+json``/``+xml`` types); never images, archives, PDFs."""
    return media.startswith("text/") or media in _TEXT_TYPES or media.endswith(("+json", "+xml"))


class _Decoder:
    """Content-Encoding decoding with a bound on the output, so a small gzip bomb cannot fill memory."""

    def __init__(self, encoding: str) -> None:
        self._encoding = encoding.strip().lower()
        self._zlib: zlib._Decompress | None = None
        if self._encoding in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self._encoding == "deflate":
            self._zlib = zlib.decompressobj()
        elif self._encoding not in ("", "identity"):
            raise FetchFailed(f"the server sent Content-Encoding {self._encoding!r}, which is not supported")
        self._first = True

    def feed(self, chunk: bytes, *, limit: int) -> bytes:
        if self._zlib is None:
            return chunk
        try:
            return self._zlib.decompress(chunk, limit)
        except zlib.error as exc:
            # "deflate" is zlib-wrapped per RFC 9110 8.4.1.2, but some servers send raw deflate (httpx retries so).
            if self._encoding == "deflate" and self._first:
                self._first = False
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                return self.feed(chunk, limit=limit)
            raise FetchFailed(f"the body is not valid {self._encoding} ({exc})") from None
        finally:
            self._first = False


def _result(url: str, target: Target, reply: _Reply) -> FetchResult:
    media = reply.content_type.split(";", 1)[0].strip().lower()
    text = reply.body.decode(_charset(reply, media), errors="replace")
    title = ""
    if media in _HTML_TYPES:
        page = html_to_text(text)
        text, title = page.text, page.title
    return FetchResult(
        url=url,
        final_url=target.url,
        status=reply.status,
        content_type=reply.content_type,
        text=text,
        truncated=reply.truncated,
        title=title,
    )


def _charset(reply: _Reply, media: str) -> str:
    """The header's charset, else an HTML <meta charset>, else UTF-8 (JSON's only encoding, RFC 8259 8.1)."""
    candidates = [reply.charset] if reply.charset else []
    if media in _HTML_TYPES:
        found = _META_CHARSET.search(reply.body[:4096])
        if found:
            candidates.append(found.group(1).decode("ascii"))
    for name in candidates:
        try:
            return codecs.lookup(name).name
        except LookupError:
            continue
    return "utf-8"
