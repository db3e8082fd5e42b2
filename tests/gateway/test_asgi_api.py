"""The API's lean ASGI handler: /v1/ without the browser middleware and without a thread per request; everything
else keeps Django's full stack."""

from __future__ import annotations

import asyncio
import io
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import pytest

from gateway.asgi_api import API_MIDDLEWARE, ApiASGIHandler, PathDispatch

pytestmark = pytest.mark.django_db(transaction=True)


async def _call(
    app: Any, path: str, method: str = "GET", headers: list[tuple[bytes, bytes]] | None = None, body: bytes = b""
) -> tuple[int, dict[bytes, bytes], bytes]:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), *(headers or [])], "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }  # fmt: skip
    sent: list[dict[str, Any]] = []
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client stays connected (Django cancels this once the answer is sent)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], {k.lower(): v for k, v in start["headers"]}, body


async def test_api_paths_skip_the_browser_middleware_admin_keeps_it() -> None:
    from lynkr_site.asgi import application

    status, headers, body = await _call(application, "/v1/models")
    assert status == 401  # no key: the API's own answer, Anthropic-shaped
    assert orjson.loads(body)["error"]["type"] == "authentication_error"
    assert b"request-id" in headers  # the request-id middleware still runs
    assert b"x-frame-options" not in headers  # XFrameOptionsMiddleware did not
    assert b"cross-origin-opener-policy" not in headers  # nor SecurityMiddleware

    status, headers, _ = await _call(application, "/admin/login/")
    assert status == 200
    assert headers[b"x-frame-options"] == b"DENY"
    assert b"csrftoken" in headers.get(b"set-cookie", b"")  # CSRF middleware ran: the admin keeps the full stack


async def test_framework_errors_under_v1_stay_anthropic_shaped() -> None:
    from lynkr_site.asgi import application

    status, headers, body = await _call(application, "/v1/messages", method="GET")
    assert status == 405
    assert orjson.loads(body)["error"]["type"] == "invalid_request_error"
    assert headers[b"allow"] == b"POST"


@pytest.mark.parametrize(("handler", "started_per_request"), [("api", 0), ("django", 2)])
async def test_no_thread_is_started_per_request(
    handler: str, started_per_request: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.core.asgi import get_asgi_application

    app = ApiASGIHandler() if handler == "api" else get_asgi_application()
    # Django logs a 4xx answer through the loop's default executor, whose ThreadPoolExecutor starts a second worker
    # when a call comes in before the first worker has marked itself idle (after it has already handed back its
    # result): a race, not a thread per request. One worker takes that race away; the count below stays exact.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=1))
    for _ in range(3):  # warm-up: asgiref's one shared sync thread may start once
        await _call(app, "/v1/models")
    started: list[str] = []
    original = threading.Thread.start

    def counting_start(self: threading.Thread) -> None:
        # The database pool (gateway/db.py) may grow at any moment for the routing-version poller: not a request's.
        if not self.name.startswith("lynkr-db"):
            started.append(f"{self.name} ({getattr(self, '_target', None)})")
        original(self)

    monkeypatch.setattr(threading.Thread, "start", counting_start)
    for _ in range(20):
        await _call(app, "/v1/models")
    # Django's own handler (the control) starts a thread per request for its ThreadSensitiveContext, and another
    # to shut that executor down; the API's handler starts none.
    assert len(started) == 20 * started_per_request, started


@pytest.mark.parametrize(("handler", "inline"), [("api", True), ("django", False)])
async def test_request_signals_run_in_the_loop_thread_not_a_thread_hop(handler: str, inline: bool) -> None:
    from django.core.asgi import get_asgi_application
    from django.core.signals import request_finished, request_started

    app = ApiASGIHandler() if handler == "api" else get_asgi_application()
    ran: list[tuple[str, int]] = []

    def started(**kwargs: Any) -> None:
        ran.append(("started", threading.get_ident()))

    def finished(**kwargs: Any) -> None:
        ran.append(("finished", threading.get_ident()))

    request_started.connect(started)
    request_finished.connect(finished)
    try:
        status, _, _ = await _call(app, "/v1/models")
    finally:
        request_started.disconnect(started)
        request_finished.disconnect(finished)
    assert status == 401
    assert [name for name, _ in ran] == ["started", "finished"]  # both sent, once each, in order
    here = threading.get_ident()
    assert all((thread == here) is inline for _, thread in ran)


async def test_an_async_request_signal_receiver_is_refused() -> None:
    from django.core.signals import request_started

    async def receiver(**kwargs: Any) -> None:
        return None

    request_started.connect(receiver)
    try:
        with pytest.raises(TypeError, match="an async receiver"):
            await _call(ApiASGIHandler(), "/v1/models")
    finally:
        request_started.disconnect(receiver)


@pytest.mark.parametrize(("handler", "sent"), [("api", False), ("django", True)])
async def test_request_signals_with_only_djangos_own_receivers_are_not_sent(
    handler: str, sent: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Django's own receivers (reset_queries, close_old_connections, close_caches, reset_urlconf) have nothing to act
    on in the loop thread; with no other receiver the API's handler skips both signals, Django's handler (the
    control) sends them."""
    from django.core.asgi import get_asgi_application
    from django.core.signals import request_finished, request_started

    app = ApiASGIHandler() if handler == "api" else get_asgi_application()
    calls: list[str] = []
    for name, signal in (("started", request_started), ("finished", request_finished)):
        for method in ("send", "asend"):
            real = getattr(signal, method)
            monkeypatch.setattr(signal, method, lambda *a, _n=name, _r=real, **k: (calls.append(_n), _r(*a, **k))[1])
    status, _, _ = await _call(app, "/v1/models")
    assert status == 401
    assert calls == (["started", "finished"] if sent else [])


def test_a_cache_backend_with_its_own_close_keeps_the_request_signals(settings: Any) -> None:
    from gateway import asgi_api

    asgi_api._caches_close_nothing.cache_clear()
    try:
        assert asgi_api._request_signals_needed() is False  # the test settings: locmem, whose close() is BaseCache's
        asgi_api._caches_close_nothing.cache_clear()
        settings.CACHES = {**settings.CACHES, "mc": {"BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache"}}
        assert asgi_api._request_signals_needed() is True  # memcached closes its client on request_finished
    finally:
        asgi_api._caches_close_nothing.cache_clear()


def test_closing_a_response_without_the_signal_still_closes_its_resources(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.core.signals import request_finished
    from django.http import HttpResponse

    from gateway.asgi_api import _response_close

    finished: list[Any] = []
    monkeypatch.setattr(request_finished, "send", lambda **kwargs: finished.append(kwargs))
    closed: list[str] = []

    def failing() -> None:
        closed.append("failing")
        raise OSError("already gone")

    for signals in (False, True):
        response = HttpResponse(b"ok")
        response._resource_closers.extend([failing, lambda: closed.append("second")])
        _response_close(response, signals)
        assert closed == ["failing", "second"]  # a failing closer does not stop the next, as in Django
        assert response.closed and response._resource_closers == []
        assert len(finished) == (1 if signals else 0)
        closed.clear()


def test_meta_headers_answer_as_djangos_http_headers() -> None:
    from django.http.request import HttpHeaders

    from gateway.asgi_api import MetaHeaders

    meta = {
        "HTTP_X_API_KEY": "sk-1", "HTTP_ANTHROPIC_BETA": "a,b", "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": "12", "REQUEST_METHOD": "POST", "SERVER_NAME": "x", "HTTP_HOST": "h",
    }  # fmt: skip
    ours, django = MetaHeaders(meta), HttpHeaders(meta)
    assert dict(ours) == dict(django)
    assert list(ours) == list(django) == ["X-Api-Key", "Anthropic-Beta", "Content-Type", "Content-Length", "Host"]
    assert len(ours) == len(django) == 5
    for name in ("x-api-key", "X-API-KEY", "x_api_key", "content-type", "Content_Length", "host"):
        assert ours[name] == django[name]
        assert name in ours
    for missing in ("request-method", "server-name", "x-other"):
        assert missing not in ours and missing not in django
        assert ours.get(missing) is None
        with pytest.raises(KeyError):
            ours[missing]


def test_the_api_handler_reads_request_headers_from_meta() -> None:
    from gateway.asgi_api import MetaHeaders

    scope = _scope_for("/v1/messages", 3)
    scope["headers"] = [*scope["headers"], (b"x-api-key", b"sk-1"), (b"x-api-key", b"sk-2")]
    request, error = ApiASGIHandler().create_request(scope, io.BytesIO(b"{}\n"))
    assert error is None
    assert isinstance(request.headers, MetaHeaders)
    assert request.headers["X-Api-Key"] == "sk-1,sk-2"  # joined as Django joins a repeated header in META
    assert request.headers["content-length"] == "3"

    bad = {**scope, "query_string": b"q=\xff"}  # not UTF-8: Django answers 400 without a request
    request, error = ApiASGIHandler().create_request(bad, io.BytesIO(b""))
    assert request is None and error.status_code == 400


def test_middleware_that_is_not_async_capable_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import gateway.asgi_api as module

    monkeypatch.setattr(module, "API_MIDDLEWARE", ("django.middleware.common.CommonMiddleware",))
    CommonMiddleware = __import__("django.middleware.common", fromlist=["CommonMiddleware"]).CommonMiddleware
    monkeypatch.setattr(CommonMiddleware, "async_capable", False, raising=False)
    with pytest.raises(TypeError, match="not async-capable"):
        ApiASGIHandler()
    assert API_MIDDLEWARE == ("gateway.middleware.RequestIdMiddleware",)


async def test_path_dispatch_by_prefix() -> None:
    seen: list[str] = []

    def app(name: str) -> Any:
        async def handle(scope: dict[str, Any], receive: Any, send: Any) -> None:
            seen.append(name)

        return handle

    dispatch = PathDispatch(("/v1/", "/bench/floor/"), app("api"), app("default"))
    for path in ("/v1/messages", "/bench/floor/v1/messages", "/v1", "/admin/", "/v10/x"):
        await dispatch({"type": "http", "path": path}, _never_receive, _never_send)
    await dispatch({"type": "websocket", "path": "/v1/x"}, _never_receive, _never_send)
    assert seen == ["api", "api", "default", "default", "default", "default"]


async def _never_receive() -> dict[str, Any]:
    raise AssertionError("not called")


async def _never_send(message: dict[str, Any]) -> None:
    raise AssertionError("not called")


async def test_a_listener_ending_after_its_handler_is_gone_is_not_logged_as_an_error() -> None:
    import gc

    from django.core.exceptions import RequestAborted

    from gateway.asgi_api import _outcome_retrieved

    reported: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: reported.append(context))
    try:
        for retrieve in (False, True):

            async def listener() -> None:
                raise RequestAborted()

            task = asyncio.create_task(listener())
            if retrieve:
                task.add_done_callback(_outcome_retrieved)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            del task
            gc.collect()
            # The control (no callback) is reported as "never retrieved"; with the callback nothing is.
            assert len(reported) == (0 if retrieve else 1), reported
            reported.clear()
    finally:
        loop.set_exception_handler(None)


# A streamed answer that reports, while it streams, what its request still holds (``_released_urls`` below).
_seen_while_streaming: list[Any] = []


async def _streaming_view(request: Any) -> Any:
    from django.http import StreamingHttpResponse

    size = len(request.body)  # read as the API's views read it (gateway/api.py)

    async def answer() -> Any:
        from django.http.request import RawPostDataException

        _seen_while_streaming.append("_body" in request.__dict__)
        try:
            request.body  # noqa: B018
        except RawPostDataException:
            _seen_while_streaming.append("late read refused")
        yield b"read %d bytes" % size

    return StreamingHttpResponse(answer())


async def test_a_streamed_answer_does_not_keep_the_request_body(settings: Any) -> None:
    from django.urls import path

    settings.ROOT_URLCONF = type("Urls", (), {"urlpatterns": [path("v1/stream", _streaming_view)]})
    _seen_while_streaming.clear()
    status, _, body = await _call(ApiASGIHandler(), "/v1/stream", method="POST", body=b"x" * 80_000)
    assert (status, body) == (200, b"read 80000 bytes")
    # While the answer streams, the body's bytes are gone and a late read fails loudly rather than reading b"".
    assert _seen_while_streaming == [False, "late read refused"]


async def _plain_view(request: Any) -> Any:
    from django.http import HttpResponse

    return HttpResponse(b"ok")


async def test_a_client_that_hangs_up_after_its_answer_leaves_no_reference_cycle(settings: Any) -> None:
    """Django's own handler keeps, when the client hangs up (RequestAborted), a traceback of its frame whose locals
    hold the task that holds that error: the request and response then wait for a full collection, ~95 objects a
    request. Here reference counting frees them as soon as the handler returns."""
    import gc
    import weakref

    from django.urls import path

    settings.ROOT_URLCONF = type("Urls", (), {"urlpatterns": [path("v1/plain", _plain_view)]})
    app = ApiASGIHandler()
    created: list[weakref.ref[Any]] = []
    create_request = app.create_request

    def create_and_watch(scope: Any, body_file: Any) -> Any:
        request, error = create_request(scope, body_file)
        created.append(weakref.ref(request))
        return request, error

    app.create_request = create_and_watch  # type: ignore[method-assign]
    answered = asyncio.Event()
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await answered.wait()  # as uvicorn and Daphne do: once the answer is sent, the next receive is a disconnect
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body"):
            answered.set()
            await asyncio.sleep(0)  # the listener sees the disconnect before the handler looks at it

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": "/v1/plain", "raw_path": b"/v1/plain", "query_string": b"", "root_path": "",
        "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
    }  # fmt: skip
    gc.collect()
    gc.disable()  # only reference counting may free the request
    try:
        await app(scope, receive, send)
        assert len(created) == 1
        assert created[0]() is None
    finally:
        gc.enable()


def _receiving(messages: list[dict[str, Any]]) -> Any:
    pending = list(messages)

    async def receive() -> dict[str, Any]:
        return pending.pop(0)

    return receive


async def test_the_body_is_read_into_memory_and_request_body_copies_nothing() -> None:
    handler = ApiASGIHandler()
    chunk = b'{"model": "m", "pad": "' + b"x" * 70_000 + b'"}'
    single = await handler.read_body(_receiving([{"type": "http.request", "body": chunk}]))
    request, _ = handler.create_request(_scope_for("/v1/messages", len(chunk)), single)
    assert request.body is chunk  # the bytes the server handed over: no spooled file, no copy

    parts = [{"type": "http.request", "body": chunk[:1000], "more_body": True},
             {"type": "http.request", "more_body": True},  # a message without a body part
             {"type": "http.request", "body": chunk[1000:], "more_body": False}]  # fmt: skip
    joined = await handler.read_body(_receiving(parts))
    request, _ = handler.create_request(_scope_for("/v1/messages", len(chunk)), joined)
    assert request.body == chunk

    empty = await handler.read_body(_receiving([{"type": "http.request"}]))
    assert empty.read() == b""


async def test_a_client_that_leaves_before_its_body_is_in_gets_no_answer() -> None:
    handler = ApiASGIHandler()
    sent: list[Any] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    receive = _receiving([{"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}])
    await handler(_scope_for("/v1/messages", 10), receive, send)
    assert sent == []


def _scope_for(path: str, length: int) -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"content-length", str(length).encode())],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
    }  # fmt: skip


async def test_each_api_path_is_resolved_once_and_again_under_a_new_urlconf(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.urls import URLResolver, clear_url_caches

    from gateway import asgi_api

    asgi_api._resolved.cache_clear()
    resolved: list[str] = []
    resolve = URLResolver.resolve

    def counting(self: URLResolver, path: str) -> Any:
        resolved.append(path)
        return resolve(self, path)

    monkeypatch.setattr(URLResolver, "resolve", counting)
    handler = ApiASGIHandler()
    for _ in range(3):
        status, _, body = await _call(handler, "/v1/models")
        assert status == 401 and orjson.loads(body)["error"]["type"] == "authentication_error"
    for path in ("/v1/no-such-path", "/v1/no-such-path", "/nothing-here", "/nothing-here"):
        status, _, _ = await _call(handler, path)
        assert status == 404
    top = [path for path in resolved if path.startswith("/")]  # the root resolver's calls (includes recurse)
    # /v1/no-such-path matches the API's catch-all (an Anthropic-shaped 404): remembered. /nothing-here matches no
    # pattern: Resolver404 is raised each time, never remembered.
    assert top == ["/v1/models", "/v1/no-such-path", "/nothing-here", "/nothing-here"]
    clear_url_caches()  # what a settings override of ROOT_URLCONF does: a new resolver, resolved afresh
    await _call(handler, "/v1/models")
    assert [path for path in resolved if path.startswith("/")][-1] == "/v1/models"
    assert len([path for path in resolved if path == "/v1/models"]) == 2
