"""Sending an ``UpstreamRequest``: the one place adapters do I/O.

Every HTTP backend sends the same way (build request, send with streaming, map transport errors), so this is
shared rather than repeated in each adapter package.

The hot path (``upstream_send``) uses aiohttp, not httpx: for one ~40 KB POST and a 20-chunk SSE answer it costs
about a quarter of httpx's CPU (C HTTP parser, no per-request timeout/transport object layers), and the gateway's
own work per request has a 1 ms budget. aiohttp stays inside this module: callers get an ``UpstreamResponse`` and
Lynkr's own exceptions. ``http_client()`` (httpx) remains for the off-hot-path callers (health checks, Ollama's
model discovery); httpx is imported only there, as it costs a server process ~5 MB RSS (it loads rich and pygments).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import ssl
import weakref
from collections.abc import AsyncGenerator, Mapping
from typing import TYPE_CHECKING

import aiohttp
import certifi
from django.conf import settings
from yarl import URL

from gateway.wire.errors import ApiError, TimeoutError_, UpstreamPoolFullError
from providers.adapters.base import UpstreamRequest

if TYPE_CHECKING:
    import httpx

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = weakref.WeakKeyDictionary()

MAX_ERROR_BODY = 64 * 1024


def http_client() -> httpx.AsyncClient:
    """One pooled httpx client per event loop, for the callers off the hot path (a server process has one loop)."""
    import httpx

    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        limit = settings.LYNKR_UPSTREAM_MAX_CONNECTIONS
        client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit, keepalive_expiry=60),
            timeout=httpx.Timeout(
                connect=settings.LYNKR_UPSTREAM_CONNECT_TIMEOUT,
                read=settings.LYNKR_UPSTREAM_READ_TIMEOUT,
                write=60.0,
                pool=settings.LYNKR_UPSTREAM_CONNECT_TIMEOUT,
            ),
            follow_redirects=False,
            trust_env=False,  # never route model traffic through an ambient HTTP(S)_PROXY by accident
        )
        _clients[loop] = client
    return client


# --- errors while reading an answer's body --------------------------------------------------------------------


class UpstreamReadTimeout(TimeoutError_):
    """The upstream sent nothing for the request's read timeout while its body was being read."""


class UpstreamDisconnected(ApiError):
    """The upstream's answer broke off (connection lost, malformed chunking, ...); the message names the cause."""


def _read_error(exc: BaseException) -> TimeoutError_ | ApiError:
    if isinstance(exc, TimeoutError):  # aiohttp's SocketTimeoutError is an asyncio.TimeoutError too
        return UpstreamReadTimeout("upstream stopped sending (read timeout)")
    return UpstreamDisconnected(f"upstream connection lost: {type(exc).__name__}")


class UpstreamResponse:
    """An upstream answer with its body unread. ``aclose()`` it always: that frees its connection-pool slot (the
    connection goes back to the pool when the body was read to the end, else it is closed)."""

    __slots__ = ("_closed", "_gate", "_response", "headers", "status_code")

    def __init__(self, response: aiohttp.ClientResponse, gate: asyncio.Semaphore) -> None:
        self._closed = False
        self._gate = gate
        self._response = response
        self.status_code: int = response.status
        self.headers: Mapping[str, str] = response.headers  # case-insensitive

    async def read_chunk(self) -> bytes:
        """The bytes that have arrived (waiting for some), b"" at the end. Cancelling it loses nothing."""
        try:
            return await self._response.content.readany()
        except (aiohttp.ClientError, OSError) as exc:  # TimeoutError is an OSError
            raise _read_error(exc) from exc

    async def aread(self) -> bytes:
        try:
            return await self._response.read()
        except (aiohttp.ClientError, OSError) as exc:
            raise _read_error(exc) from exc

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._response.release()
        finally:
            self._gate.release()

    def __del__(self) -> None:
        # A response dropped unclosed must not shrink the pool for good (aiohttp's own __del__ frees the socket).
        if not self._closed:
            self._closed = True
            self._gate.release()


# --- the pool: one aiohttp session per event loop -------------------------------------------------------------


class _Pool:
    """The loop's session, and the gate that bounds how many answers are open at once.

    The gate is ours (not only the connector's ``limit``) so that waiting for a free connection can be told apart
    from a slow TCP connect: a full pool is a local overload, not the provider's failure."""

    __slots__ = ("gate", "guard", "limit", "session")

    def __init__(self, session: aiohttp.ClientSession, limit: int) -> None:
        self.session = session
        self.limit = limit
        self.gate = asyncio.Semaphore(limit)
        self.guard: AsyncGenerator[None, None] | None = None


_pools: dict[asyncio.AbstractEventLoop, _Pool] = {}


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # What httpx.create_ssl_context(trust_env=False) builds (httpx 0.28, _config.py: certifi's bundle, SSL_CERT_FILE
    # ignored), without importing httpx on the hot path. Built once per process.
    return ssl.create_default_context(cafile=certifi.where())


def _pool_open(loop: asyncio.AbstractEventLoop) -> _Pool:
    _pools_sweep()
    limit = settings.LYNKR_UPSTREAM_MAX_CONNECTIONS
    connector = aiohttp.TCPConnector(limit=limit, keepalive_timeout=60, ssl=_ssl_context())
    session = aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None),  # each request brings its own (see _timeout)
        cookie_jar=aiohttp.DummyCookieJar(),  # an API gateway keeps no cookies between clients
        trust_env=False,  # never route model traffic through an ambient HTTP(S)_PROXY by accident
        auto_decompress=True,
        max_line_size=16384,  # h11 (httpx) allowed a 16 KiB header block; aiohttp's default is 8 KiB a line
        max_field_size=16384,
    )
    pool = _Pool(session, limit)
    pool.guard = _close_with_loop(loop, pool)
    # Run the guard to its yield now: from then on the loop knows it, and its shutdown_asyncgens() (asyncio.run,
    # asyncio.Runner and so pytest-asyncio, asgiref's async_to_sync, uvicorn) closes it, and so the session, while
    # the loop still runs. Nothing here awaits, so this cannot suspend.
    with contextlib.suppress(StopIteration):
        pool.guard.__anext__().send(None)
    _pools[loop] = pool
    return pool


async def _close_with_loop(loop: asyncio.AbstractEventLoop, pool: _Pool) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        if _pools.get(loop) is pool:
            del _pools[loop]
        await pool.session.close()


def _guard_finish(pool: _Pool) -> None:
    """Close a pool whose loop is closed (or not running) without that loop: aiohttp closes no transport of a closed
    loop, so the guard's close runs to its end at once (should it ever wait, it is abandoned)."""
    if pool.guard is None:
        return
    closing = pool.guard.aclose()
    try:
        closing.send(None)
    except (StopIteration, RuntimeError):
        return
    closing.close()


def _pools_sweep() -> None:
    """Forget the pools of loops that were closed without ``shutdown_asyncgens()`` (a bare ``loop.close()``)."""
    for loop, pool in list(_pools.items()):
        if loop.is_closed():
            _pools.pop(loop, None)
            _guard_finish(pool)


@atexit.register
def _pools_close_at_exit() -> None:
    """Close what no loop shutdown closed (e.g. under Daphne's reactor), before interpreter teardown would report it
    as an "Unclosed client session"."""
    for loop, pool in list(_pools.items()):
        if loop.is_closed():
            _pools.pop(loop, None)
            _guard_finish(pool)
        elif not loop.is_running() and pool.guard is not None:
            with contextlib.suppress(Exception):
                loop.run_until_complete(pool.guard.aclose())


@functools.lru_cache(maxsize=64)
def _timeout(connect: float, read: float) -> aiohttp.ClientTimeout:
    # connect: DNS + TCP (+ TLS) of a new connection; sock_read: the longest silence while waiting for the answer's
    # head or between two reads of its body (httpx's read timeout). No total: a long answer may stream for long.
    return aiohttp.ClientTimeout(total=None, connect=connect, sock_read=read)


async def _gate_wait(pool: _Pool, wait: float) -> None:
    try:
        async with asyncio.timeout(wait):
            await pool.gate.acquire()
    except TimeoutError:
        raise UpstreamPoolFullError(
            f"gateway upstream connection pool is full ({pool.limit} connections busy, "
            f"LYNKR_UPSTREAM_MAX_CONNECTIONS); retry shortly",
            headers={"retry-after": "1"},
        ) from None


async def upstream_send(request: UpstreamRequest, *, provider_name: str) -> UpstreamResponse:
    """Send and return the response with its body unread (the caller reads it and must ``aclose()`` it)."""
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop) or _pool_open(loop)
    if pool.gate.locked():
        await _gate_wait(pool, request.connect_timeout)
    else:
        await pool.gate.acquire()  # a free slot: returns at once
    try:
        response = await pool.session.request(
            request.method,
            URL(request.url, encoded=True),  # byte-exact, as the adapter built it (Azure's ?api-version=...)
            headers=request.headers,
            data=request.body or None,
            allow_redirects=False,
            timeout=_timeout(request.connect_timeout, request.read_timeout),
        )
    except BaseException as exc:
        pool.gate.release()
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            raise ApiError(f"provider {provider_name!r} did not accept a connection in time") from exc
        if isinstance(exc, TimeoutError):
            raise TimeoutError_(f"provider {provider_name!r} did not answer in time") from exc
        if isinstance(exc, aiohttp.ClientError | OSError):
            raise ApiError(f"cannot reach provider {provider_name!r}: {type(exc).__name__}") from exc
        raise
    return UpstreamResponse(response, pool.gate)


async def upstream_read_error_body(response: UpstreamResponse) -> bytes:
    """At most MAX_ERROR_BODY bytes of an error answer, then close it."""
    parts: list[bytes] = []
    size = 0
    try:
        while chunk := await response.read_chunk():
            parts.append(chunk)
            size += len(chunk)
            if size >= MAX_ERROR_BODY:
                break
    except (UpstreamReadTimeout, UpstreamDisconnected):
        pass
    finally:
        await response.aclose()
    return b"".join(parts)[:MAX_ERROR_BODY]
