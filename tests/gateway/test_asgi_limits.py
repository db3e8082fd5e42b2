"""The ASGI body guard refuses oversized bodies before the app reads them (declared or chunked)."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.asgi_limits import BodyLimitMiddleware


class App:
    def __init__(self) -> None:
        self.called = False
        self.body = b""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.called = True
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            self.body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def _receiver(chunks: list[bytes]) -> Any:
    queue = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]

    async def receive() -> dict[str, Any]:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    return receive


async def _run(headers: list[tuple[bytes, bytes]], chunks: list[bytes], limit: int = 10) -> tuple[App, list[Any]]:
    app, sent = App(), []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await BodyLimitMiddleware(app, limit)({"type": "http", "headers": headers}, _receiver(chunks), send)
    return app, sent


async def test_declared_length_over_limit_refused_without_calling_app() -> None:
    app, sent = await _run([(b"content-length", b"11")], [b"x" * 11])
    assert not app.called
    assert sent[0]["status"] == 413
    assert (b"x-should-retry", b"false") in sent[0]["headers"]
    assert orjson.loads(sent[1]["body"])["error"]["type"] == "request_too_large"


async def test_chunked_body_crossing_limit_refused_once() -> None:
    app, sent = await _run([], [b"x" * 6, b"x" * 6])
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [413]
    assert app.body == b"x" * 6  # the app saw the first chunk, then a disconnect, and its own answer was dropped


async def test_body_within_limit_passes() -> None:
    app, sent = await _run([(b"content-length", b"4")], [b"abcd"])
    assert app.body == b"abcd"
    assert sent[0]["status"] == 200


async def test_other_scopes_pass_through() -> None:
    app = App()
    seen: list[Any] = []

    async def send(message: dict[str, Any]) -> None:
        seen.append(message)

    await BodyLimitMiddleware(app, 1)({"type": "lifespan"}, _receiver([b"xx"]), send)
    assert app.called
