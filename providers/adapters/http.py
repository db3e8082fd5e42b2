"""Sending an ``UpstreamRequest`` with the process's shared httpx client: the one place adapters do I/O.

Every HTTP backend sends the same way (build request, send with streaming, map transport errors), so this is
shared rather than repeated in each adapter package.
"""

from __future__ import annotations

import asyncio
import weakref

import httpx
from django.conf import settings

from gateway.wire.errors import ApiError, TimeoutError_
from providers.adapters.base import UpstreamRequest

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = weakref.WeakKeyDictionary()

MAX_ERROR_BODY = 64 * 1024


def http_client() -> httpx.AsyncClient:
    """One pooled client per event loop (a server process has one loop, so one client)."""
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


async def upstream_send(request: UpstreamRequest, *, provider_name: str) -> httpx.Response:
    """Send and return the response with its body unread (the caller streams it and must close it)."""
    client = http_client()
    timeout = httpx.Timeout(
        connect=request.connect_timeout, read=request.read_timeout, write=60.0, pool=request.connect_timeout
    )
    built = client.build_request(
        request.method, request.url, headers=list(request.headers), content=request.body, timeout=timeout
    )
    try:
        return await client.send(built, stream=True)
    except httpx.TimeoutException as exc:
        if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            raise ApiError(f"provider {provider_name!r} did not accept a connection in time") from exc
        raise TimeoutError_(f"provider {provider_name!r} did not answer in time") from exc
    except httpx.HTTPError as exc:
        raise ApiError(f"cannot reach provider {provider_name!r}: {type(exc).__name__}") from exc


async def upstream_read_error_body(response: httpx.Response) -> bytes:
    """At most MAX_ERROR_BODY bytes of an error answer, then close it."""
    parts: list[bytes] = []
    size = 0
    try:
        async for chunk in response.aiter_bytes():
            parts.append(chunk)
            size += len(chunk)
            if size >= MAX_ERROR_BODY:
                break
    except httpx.HTTPError:
        pass
    finally:
        await response.aclose()
    return b"".join(parts)[:MAX_ERROR_BODY]
