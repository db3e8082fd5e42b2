"""The API's own Django ASGI handler: the same URLconf and views, without the browser middleware.

Django's built-in middleware (sessions, auth, CSRF, messages, security, clickjacking, common) are
``MiddlewareMixin`` classes whose async path runs ``process_request``/``process_response`` through
``sync_to_async(thread_sensitive=True)``: two thread hops each, and a fresh thread per request, on every request.
Measured on these machines (bench/README.md), an empty ninja endpoint answered in 4.2 ms p50 behind that stack and
1.7 ms behind the request-id middleware alone. None of it serves the API: callers authenticate with API keys (never
sessions or cookies, so there is nothing for CSRF to protect), and the answers are JSON or SSE, never pages to frame.
So requests under ``/v1/`` (and the benchmark's FLOOR) take this handler; the admin, dashboard and everything else
keep the full ``MIDDLEWARE`` stack.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response
from django.utils.module_loading import import_string

# Async-native only: a MiddlewareMixin class here would bring back the thread hops this handler exists to avoid.
API_MIDDLEWARE = ("gateway.middleware.RequestIdMiddleware",)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]


class ApiASGIHandler(ASGIHandler):
    """``ASGIHandler`` whose middleware chain is ``API_MIDDLEWARE`` instead of ``settings.MIDDLEWARE``, and which
    does not open a ``ThreadSensitiveContext`` per request."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Django opens a ThreadSensitiveContext per request so that a sync view's thread-sensitive work gets a thread
        # of its own; the first such hop starts a new thread. The API's views are async and do their blocking work
        # with thread_sensitive=False on bounded pools (gateway/db.py, workspace/invoke.py), so the only
        # thread-sensitive hops left are Django's own (request_started receivers, response.close()): short calls
        # that can share asgiref's one sync thread instead of starting a thread for every request.
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        await self.handle(scope, receive, send)

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware: list[Any] = []
        self._template_response_middleware: list[Any] = []
        self._exception_middleware: list[Any] = []
        handler = convert_exception_to_response(self._get_response_async)  # type: ignore[attr-defined]
        for middleware_path in reversed(API_MIDDLEWARE):
            middleware = import_string(middleware_path)
            if not getattr(middleware, "async_capable", False):
                raise TypeError(f"{middleware_path} is not async-capable: it cannot serve the API's handler")
            handler = convert_exception_to_response(middleware(handler))
        self._middleware_chain = handler


class PathDispatch:
    """HTTP requests whose path starts with one of ``prefixes`` to ``api``, everything else to ``default``."""

    def __init__(self, prefixes: tuple[str, ...], api: Asgi, default: Asgi) -> None:
        self.prefixes = prefixes
        self.api = api
        self.default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") == "http" and str(scope.get("path", "")).startswith(self.prefixes):
            await self.api(scope, receive, send)
        else:
            await self.default(scope, receive, send)
