"""Sending an ``UpstreamRequest``: the one place adapters do I/O.

Every HTTP backend sends the same way (build request, send with streaming, map transport errors), so this is
shared rather than repeated in each adapter package.

The hot path (``upstream_send``) speaks HTTP/1.1 itself over asyncio transports, with llhttp (httptools) parsing
the answers (providers/adapters/http1.py): the gateway's own work per request has a 1 ms budget, and one ~60 KB
POST with its answer cost 250 us of CPU through aiohttp (which this replaced) and 98 us this way, measured; httpx
cost about four times aiohttp's. Callers get an ``UpstreamResponse`` and Lynkr's own exceptions. ``http_client()``
(httpx) remains for the off-hot-path callers (health checks, Ollama's model discovery); httpx is imported only
there, as it costs a server process ~5 MB RSS (it loads rich and pygments).
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
from urllib.parse import urlsplit

import certifi
from django.conf import settings

from gateway.wire.errors import ApiError, TimeoutError_, UpstreamPoolFullError
from providers.adapters import http1
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
    if isinstance(exc, TimeoutError):
        return UpstreamReadTimeout("upstream stopped sending (read timeout)")
    return UpstreamDisconnected(f"upstream connection lost: {exc}")


class UpstreamResponse:
    """An upstream answer with its body unread. ``aclose()`` it always: that frees its connection-pool slot (the
    connection goes back to the pool when the body was read to the end, else it is closed)."""

    __slots__ = ("_closed", "_connection", "_pool", "_read_timeout", "headers", "status_code")

    def __init__(self, connection: http1.Connection, pool: _Pool, read_timeout: float) -> None:
        self._closed = False
        self._connection = connection
        self._pool = pool
        self._read_timeout = read_timeout
        self.status_code: int = connection.status
        self.headers: Mapping[str, str] = http1.Headers(connection.raw_headers)  # case-insensitive

    async def read_chunk(self) -> bytes:
        """The bytes that have arrived (waiting for some), b"" at the end. Cancelling it loses nothing."""
        try:
            return await self._connection.read(self._read_timeout)
        except (http1.HttpError, TimeoutError) as exc:
            raise _read_error(exc) from exc

    async def aread(self) -> bytes:
        parts = []
        while chunk := await self.read_chunk():
            parts.append(chunk)
        return b"".join(parts)

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._pool.release(self._connection)
        finally:
            self._pool.gate.release()

    def __del__(self) -> None:
        # A response dropped unclosed must not shrink the pool for good, nor keep its socket open.
        if not self._closed:
            self._closed = True
            self._connection.close()
            self._pool.gate.release()


# --- the pool: one per event loop ------------------------------------------------------------------------------

_Key = tuple[str, str, int]  # scheme, host, port
# An idle connection older than this is closed rather than reused (aiohttp's keepalive_timeout was the same).
KEEPALIVE_SECONDS = 60.0


class _Pool:
    """The loop's idle connections, and the gate that bounds how many answers are open at once.

    The gate (not a per-host count) is the limit, so that waiting for a free connection can be told apart from a
    slow TCP connect: a full pool is a local overload, not the provider's failure."""

    __slots__ = ("closed", "connections", "gate", "guard", "idle", "limit", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        self.loop = loop
        self.limit = limit
        self.gate = asyncio.Semaphore(limit)
        self.guard: AsyncGenerator[None, None] | None = None
        self.idle: dict[_Key, list[http1.Connection]] = {}
        # Every open connection, idle or answering, to close with the loop.
        self.connections: weakref.WeakSet[http1.Connection] = weakref.WeakSet()
        self.closed = False

    def take(self, key: _Key) -> http1.Connection | None:
        """The most recently used idle connection to ``key`` that is still open and not too old."""
        idle = self.idle.get(key)
        now = self.loop.time()
        while idle:
            connection = idle.pop()
            if not connection.lost and now - connection.idle_since < KEEPALIVE_SECONDS:
                return connection
            connection.close()
        return None

    def release(self, connection: http1.Connection) -> None:
        """Back to the idle list when its answer was read to the end and both sides keep it alive; else closed."""
        if self.closed or not connection.reusable():
            connection.close()
            return
        connection.idle_since = self.loop.time()
        self.idle.setdefault(connection.key, []).append(connection)

    def close(self) -> None:
        self.closed = True
        for connection in list(self.connections):
            connection.close()
        self.idle.clear()


_pools: dict[asyncio.AbstractEventLoop, _Pool] = {}


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # What httpx.create_ssl_context(trust_env=False) builds (httpx 0.28, _config.py: certifi's bundle, SSL_CERT_FILE
    # ignored), without importing httpx on the hot path. Built once per process.
    return ssl.create_default_context(cafile=certifi.where())


def _pool_open(loop: asyncio.AbstractEventLoop) -> _Pool:
    _pools_sweep()
    pool = _Pool(loop, settings.LYNKR_UPSTREAM_MAX_CONNECTIONS)
    pool.guard = _close_with_loop(loop, pool)
    # Run the guard to its yield now: from then on the loop knows it, and its shutdown_asyncgens() (asyncio.run,
    # asyncio.Runner and so pytest-asyncio, asgiref's async_to_sync, uvicorn) closes it, and so the pool, while
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
        pool.close()


def _guard_finish(pool: _Pool) -> None:
    """Close a pool whose loop is closed (or not running) without that loop: the guard's close runs to its end at
    once (should it ever wait, it is abandoned)."""
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
    """Close what no loop shutdown closed (e.g. under Daphne's reactor), before interpreter teardown would report its
    sockets as unclosed."""
    for loop, pool in list(_pools.items()):
        if loop.is_closed():
            _pools.pop(loop, None)
            _guard_finish(pool)
        elif not loop.is_running() and pool.guard is not None:
            with contextlib.suppress(Exception):
                loop.run_until_complete(pool.guard.aclose())


@functools.lru_cache(maxsize=256)
def _target(url: str) -> tuple[_Key, str, str]:
    """(scheme, host, port), the Host header and the request target, as the adapter built the URL: the path and
    query are sent byte for byte (Azure's ?api-version=..., escaped segments), never re-encoded."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    default = 443 if parts.scheme == "https" else 80
    port = parts.port or default
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    host_header = host if port == default else f"{host}:{port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return (parts.scheme, parts.hostname, port), host_header, target


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
    connection = None
    try:
        key, host_header, target = _target(request.url)
        body = request.body or b""
        head = http1.request_head(request.method, target, host_header, request.headers, len(body))
        connection = pool.take(key)
        if connection is None:
            context = _ssl_context() if key[0] == "https" else None
            try:
                connection = await http1.connect(loop, key, context, request.connect_timeout)
            except TimeoutError:
                raise ApiError(f"provider {provider_name!r} did not accept a connection in time") from None
            pool.connections.add(connection)
        connection.send(head + body if body else head)
        try:
            await connection.head(request.read_timeout)
        except TimeoutError:
            raise TimeoutError_(f"provider {provider_name!r} did not answer in time") from None
        return UpstreamResponse(connection, pool, request.read_timeout)
    except BaseException as exc:
        if connection is not None:
            connection.close()
        pool.gate.release()
        if isinstance(exc, OSError):  # TLS errors included (a certificate error is a ValueError too)
            raise ApiError(f"cannot reach provider {provider_name!r}: {type(exc).__name__}") from exc
        if isinstance(exc, http1.HttpError | ValueError):  # our own messages: the cause, never an address or a key
            raise ApiError(f"cannot reach provider {provider_name!r}: {exc}") from exc
        raise


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
