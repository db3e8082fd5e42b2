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

import asyncio
import contextlib
import functools
import io
import weakref
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

from django.conf import settings
from django.core.cache import close_caches
from django.core.cache.backends.base import BaseCache
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import reset_urlconf
from django.core.handlers.exception import convert_exception_to_response
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, reset_queries
from django.http import HttpResponseBase
from django.http.request import HttpHeaders
from django.urls import URLResolver, get_resolver, set_script_prefix
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

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Django's ``ASGIHandler.handle`` (5.2) with its two thread hops made inline calls.

        Django sends ``request_started`` with ``asend`` and closes the response with ``sync_to_async(response.close)``
        (which sends ``request_finished``): each hands its sync receivers to a thread and waits for the loop to be
        woken, twice per request. Their receivers (``reset_queries``, ``close_old_connections``, ``close_caches``,
        ``reset_urlconf``) act on the calling thread's own database connections, caches and urlconf; the loop
        thread opens none (API database work runs on gateway/db.py's threads, which health-check their own
        connections), so here they do nothing: when they are the only receivers the signals are not sent at all,
        and any other receiver gets them inline (``_request_signals_needed``, which refuses an async receiver that
        ``Signal.send`` could not call from the loop)."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        signals = _request_signals_needed()
        set_script_prefix(get_script_prefix(scope))
        if signals:
            request_started.send(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            body_file.close()
            assert error_response is not None  # create_request returns one or the other
            await self.send_response(error_response, send)
            _response_close(error_response, signals)
            return

        async def process_request(request: Any, send: Send) -> Any:
            response = await self.run_get_response(request)
            _body_released(request, body_file)
            with contextlib.suppress(asyncio.CancelledError):  # the client left while the answer was sent
                await self.send_response(response, send)
            return response

        # As Django: a disconnect while the view runs cancels it (listen_for_disconnect first, so that its own
        # error cannot keep process_request from being cancelled).
        listener = asyncio.create_task(self.listen_for_disconnect(receive))
        # The client leaving ends the listener with RequestAborted, possibly after this handler is gone (Daphne
        # cancels it at shutdown): retrieve it always, so asyncio never logs it as an error nobody saw.
        listener.add_done_callback(_outcome_retrieved)
        tasks = [listener, asyncio.create_task(process_request(request, send))]
        # Cancelling this handler leaves both tasks running, as Django does: at shutdown Daphne cancels the handler
        # while gateway/lifecycle.py still drains the request task.
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                # Django calls task.result() in a try: the client's usual hang-up (RequestAborted) then holds a
                # traceback of this frame, whose locals hold the task, which holds the error: a reference cycle with
                # the request and response in it, left for a full collection on every request.
                error = None if task.cancelled() else task.exception()
                if error is None or isinstance(error, RequestAborted):
                    continue
                if isinstance(error, AssertionError):
                    body_file.close()
                raise error
            else:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        try:
            response = tasks[1].result()
        except asyncio.CancelledError:
            if signals:
                request_finished.send(sender=self.__class__)
        else:
            _response_close(response, signals)
        body_file.close()

    def create_request(self, scope: Mapping[str, Any], body_file: Any) -> tuple[Any, Any]:
        request, error_response = super().create_request(scope, body_file)
        if request is not None:
            # ``request.headers`` is a cached_property: set first, Django's HttpHeaders (a title-cased copy of every
            # META header, ~23 us for Claude Code's 20 headers, measured) is never built.
            request.__dict__["headers"] = MetaHeaders(request.META)
        return request, error_response

    async def read_body(self, receive: Receive) -> io.BytesIO:
        """The body in memory, as one bytes object. Django spools it into a ``SpooledTemporaryFile`` (rolling to disk
        past FILE_UPLOAD_MAX_MEMORY_SIZE) that ``request.body`` then copies out: two copies of a 77 KB Claude Code
        turn per request, and the file object besides. The API reads every body whole anyway, and
        BodyLimitMiddleware has already bounded it (LYNKR_MAX_BODY_BYTES). A ``BytesIO`` made from a bytes object
        shares it, and reading it whole returns that same object, so ``request.body`` copies nothing."""
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RequestAborted()  # the client left before its body was in
            if message.get("body"):
                chunks.append(message["body"])
            if not message.get("more_body", False):
                break
        return io.BytesIO(chunks[0] if len(chunks) == 1 else b"".join(chunks))

    def resolve_request(self, request: Any) -> Any:
        """Django's ``resolve_request``, remembering each path's match: resolving walks the URLconf's patterns (the
        admin's, the dashboard's, then the API's) for every request, ~40 us for /v1/messages measured on these
        machines. The API's paths are few and resolve the same way every time; a request-specific urlconf (none is
        set on this handler's requests) still goes through Django. No view middleware runs here, the one consumer of
        the match's kwargs besides the view, which gets a copy."""
        if hasattr(request, "urlconf"):
            return super().resolve_request(request)
        match = _resolved(get_resolver(), request.path_info)
        request.resolver_match = match
        return match

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


@functools.lru_cache(maxsize=256)
def _resolved(resolver: URLResolver, path: str) -> Any:
    """Keyed by the resolver too: a new URLconf (``clear_url_caches``, as tests' settings overrides do) gets a new
    one. A path that does not resolve raises ``Resolver404``, which is not remembered."""
    return resolver.resolve(path)


def _body_released(request: Any, body_file: Any) -> None:
    """Free the request body once the view has answered: a streamed answer can stay open for minutes, and Django
    would keep the body (the spooled file, and ``request.body``'s cache) until it ends, ~150 KB per open
    Claude Code stream. Nothing reads the body after the view: middleware run before it, and the streaming body's
    generator holds only what the view handed it."""
    body_file.close()
    # ``HttpRequest.body`` caches the bytes and re-wraps them as ``_stream``; with both gone a late read fails loudly
    # (RawPostDataException) instead of seeing an empty body.
    request.__dict__.pop("_body", None)
    request.__dict__.pop("_stream", None)


def _outcome_retrieved(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


# Django's own receivers of the request signals. Each acts on the calling thread's (or task's) own state, and on the
# loop thread that state is empty: the ORM refuses to run there (SynchronousOnlyOperation), so no connection has
# queries to reset or is open to close; a cache's close() does nothing unless its backend overrides it (only the
# memcached ones do; _request_signals_needed checks the configured backends); and the urlconf reset only undoes, in
# the request task's own context, Django's set_urlconf(ROOT_URLCONF) at the start of the same request. Sending both
# signals cost ~29 us per request (measured outside the loop; more inside, where asgiref's locals are context-aware).
_LOOP_NO_OP_RECEIVERS = frozenset({reset_queries, close_old_connections, close_caches, reset_urlconf})


def _request_signals_needed() -> bool:
    """True unless the request signals' receivers are only Django's own, which do nothing on the loop thread; an
    async receiver (Django's receivers tuple carries ``is_async``) would need ``asend``, which is refused."""
    needed = False
    for signal in (request_started, request_finished):
        for receiver in signal.receivers:
            if receiver[2]:
                raise TypeError(f"an async receiver of {signal!r}: the API handler sends request signals inline")
            function = receiver[1]() if isinstance(receiver[1], weakref.ReferenceType) else receiver[1]
            needed = needed or function not in _LOOP_NO_OP_RECEIVERS
    return needed or not _caches_close_nothing()


@functools.cache
def _caches_close_nothing() -> bool:
    return all(import_string(c["BACKEND"]).close is BaseCache.close for c in settings.CACHES.values())


def _response_close(response: HttpResponseBase, signals: bool) -> None:
    """``HttpResponseBase.close()`` (Django 5.2), which closes the response's resources (a streaming answer's
    iterator) and then sends ``request_finished``; without the signal when it is not needed."""
    if signals:
        response.close()
        return
    closers: list[Callable[[], Any]] = response._resource_closers  # type: ignore[attr-defined]
    for closer in closers:
        with contextlib.suppress(Exception):  # as Django: a failing closer does not stop the others
            closer()
    closers.clear()
    response.closed = True


class MetaHeaders(Mapping[str, str]):
    """``request.headers`` read from ``request.META`` when asked, as Django's ``HttpHeaders`` answers: any case,
    ``_`` for ``-``, CONTENT_TYPE and CONTENT_LENGTH included, title-cased names when iterated."""

    __slots__ = ("_meta",)

    def __init__(self, meta: Mapping[str, Any]) -> None:
        self._meta = meta

    def __getitem__(self, name: str) -> str:
        value: str = self._meta[HttpHeaders.to_wsgi_name(name)]
        return value

    def __iter__(self) -> Iterator[str]:
        for key in self._meta:
            name = HttpHeaders.parse_header_name(key)
            if name:
                yield name

    def __len__(self) -> int:
        return sum(1 for _ in self)


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
