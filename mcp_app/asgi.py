"""``/mcp``: the MCP endpoint as a plain ASGI app in front of Django (Streamable HTTP, official SDK, stateless).

Stateless with JSON responses (the SDK's ``stateless=True, json_response=True``): every POST is complete in
itself, so any process of a multi-process deployment can answer any request and nothing is kept between them.
There is no server-to-client stream, so GET (and DELETE, there being no session) answer 405, which the Streamable
HTTP spec allows (https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#listening-for-messages-from-the-server).

Before the SDK sees a request it is authenticated with the gateway's API keys and its workspace is chosen
(``workspace.context.tool_caller_resolve``): a bad key is a 401 and a workspace without a grant a 403, both JSON in
the gateway's error shape. The caller rides in the ASGI scope to the handlers (mcp_app/endpoint.py).

The SDK's session manager needs its ``run()`` task group for the life of the app, normally entered in an ASGI
lifespan handler; Daphne implements no lifespan protocol, so a background task per event loop enters it on the
first request and holds it. That task is not an in-flight request: the shutdown drain (gateway/lifecycle.py) waits
for the MCP requests themselves, never for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import orjson
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import Message, Receive, Scope, Send

from gateway.errors import GatewayError, InvalidRequestError, PermissionDeniedError
from gateway.lifecycle import request_track
from gateway.logcontext import log_context_clear, log_context_set
from gateway.shedding import shed_check
from mcp_app.endpoint import CALLER_SCOPE_KEY, mcp_server_build
from mcp_app.mount import McpMount, mcp_path
from workspace.context import tool_caller_resolve

__all__ = ["McpApplication", "McpMount", "mcp_path"]

# Loosely typed on purpose: the apps mounted here (Django's, gateway/asgi_limits.py) type scope as a plain dict.
AsgiApp = Callable[[Any, Any, Any], Awaitable[None]]


class ManagerHost:
    """One started ``StreamableHTTPSessionManager`` per event loop, its ``run()`` held open by a background task.

    Per loop because a manager's task group belongs to the loop that entered it (a test suite runs many loops; a
    server one). ``run()`` can be entered once per manager, so a new loop gets a new manager.
    """

    def __init__(self, build: Callable[[], StreamableHTTPSessionManager]) -> None:
        self._build = build
        self._loop: asyncio.AbstractEventLoop | None = None
        self._manager: StreamableHTTPSessionManager | None = None
        self._task: asyncio.Task[None] | None = None
        self._started: asyncio.Future[None] | None = None

    async def manager(self) -> StreamableHTTPSessionManager:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._task is None or self._task.done():
            self._start(loop)
        assert self._started is not None and self._manager is not None
        # Shielded: a request cancelled while the manager starts must not cancel the start others wait for.
        await asyncio.shield(self._started)
        return self._manager

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        manager = self._build()
        started: asyncio.Future[None] = loop.create_future()

        async def hold() -> None:
            try:
                async with manager.run():
                    started.set_result(None)
                    await loop.create_future()  # never resolved: held until cancelled
            except BaseException as exc:
                if not started.done():
                    started.set_exception(exc if isinstance(exc, Exception) else RuntimeError("MCP manager stopped"))
                raise

        self._loop, self._manager, self._started = loop, manager, started
        # A fresh context: the first request's log context (its request id) must not stick to the manager's task.
        self._task = loop.create_task(hold(), name="lynkr-mcp-manager", context=contextvars.Context())

    async def aclose(self) -> None:
        """Stop the manager of the running loop (tests; a host that has a shutdown hook)."""
        task = self._task
        if task is None or task.get_loop() is not asyncio.get_running_loop():
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self._loop = self._manager = self._task = self._started = None


def _headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        headers.setdefault(raw_name.decode("latin-1").lower(), raw_value.decode("latin-1"))
    return headers


def _allowed_hosts() -> list[str]:
    # What Django's HttpRequest.get_host accepts, so /mcp answers exactly the hosts the rest of the gateway does.
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return allowed


def _host_refusal(headers: dict[str, str]) -> GatewayError | None:
    """DNS-rebinding protection from ALLOWED_HOSTS (Host, and Origin when a browser sends one).

    Done here with Django's matcher instead of the SDK's TransportSecuritySettings, whose host list cannot express
    Django's ``.example.com`` patterns. With ``ALLOWED_HOSTS=*`` (the laptop default) nothing is refused here and
    the API key is what protects the endpoint.
    """
    allowed = _allowed_hosts()
    domain, _ = split_domain_port(headers.get("host", ""))
    if not domain or not validate_host(domain, allowed):
        return InvalidRequestError("invalid Host header for this gateway (see LYNKR_ALLOWED_HOSTS)", status=421)
    origin = headers.get("origin", "")
    if origin:
        origin_domain, _ = split_domain_port(urlsplit(origin).netloc)
        if not origin_domain or not validate_host(origin_domain, allowed):
            return PermissionDeniedError("cross-origin request refused: the Origin is not an allowed host")
    return None


async def _reply(send: Send, error: GatewayError, request_id: str, extra: dict[str, str] | None = None) -> None:
    body = orjson.dumps(error.body(request_id))
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((name.encode(), value.encode()) for name, value in {**error.headers, **(extra or {})}.items()),
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _stamped(send: Send, request_id: str) -> Send:
    async def stamp(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), (b"request-id", request_id.encode())]}
        await send(message)

    return stamp


class McpApplication:
    """The ASGI app answering ``/mcp``: checks, authentication, workspace, then the SDK's stateless transport."""

    def __init__(self, server: Server[Any] | None = None) -> None:
        self.server = server if server is not None else mcp_server_build()
        self.host = ManagerHost(self._manager_build)

    def _manager_build(self) -> StreamableHTTPSessionManager:
        return StreamableHTTPSessionManager(
            app=self.server,
            json_response=True,
            stateless=True,
            # Host/Origin are checked before the SDK (see _host_refusal); the SDK still checks Content-Type.
            security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
            max_request_body_size=settings.LYNKR_MAX_BODY_BYTES,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = "req_" + secrets.token_hex(12)
        send = _stamped(send, request_id)
        headers = _headers(scope)
        refusal = _host_refusal(headers)
        if refusal is not None:
            await _reply(send, refusal, request_id)
            return
        if scope.get("method") != "POST":
            # Stateless: no server-to-client stream (GET) and no session to end (DELETE).
            error = InvalidRequestError(f"{scope.get('method')} {scope.get('path')}: use POST", status=405)
            await _reply(send, error, request_id, {"allow": "POST"})
            return
        log_context_clear()
        log_context_set(request_id=request_id, route="mcp")
        try:
            shed_check()
            caller = await tool_caller_resolve(headers=headers, request_id=request_id)
        except GatewayError as exc:
            extra = {"www-authenticate": 'Bearer realm="lynkr"'} if exc.status == 401 else None
            await _reply(send, exc, request_id, extra)
            return
        log_context_set(key=caller.key.prefix)
        request_track()  # a tool call in flight gets the graceful-shutdown grace period, like a model request
        manager = await self.host.manager()
        await manager.handle_request({**scope, CALLER_SCOPE_KEY: caller}, receive, send)
