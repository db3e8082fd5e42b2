"""ASGI guard for the body limit: refuse an oversized body *before* Django spools it to disk.

Django's ASGI handler reads the whole body before any view runs, so the 413 must come from here: at once when
``Content-Length`` is over the limit, or as soon as a chunked body crosses it. The answer is Anthropic's
``request_too_large`` (Claude Code shows "Request too large (max 32MB)", claude-code-wire.md §5).
"""

from __future__ import annotations

import secrets
from typing import Any

import orjson

Scope = dict[str, Any]
Message = dict[str, Any]


def _too_large(limit: int) -> tuple[Message, Message]:
    request_id = "req_" + secrets.token_hex(12)
    body = orjson.dumps(
        {
            "type": "error",
            "error": {"type": "request_too_large", "message": f"request body exceeds {limit} bytes"},
            "request_id": request_id,
        }
    )
    start = {
        "type": "http.response.start",
        "status": 413,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-should-retry", b"false"),
            (b"request-id", request_id.encode()),
            (b"connection", b"close"),
        ],
    }
    return start, {"type": "http.response.body", "body": body}


class BodyLimitMiddleware:
    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.limit:
                    for message in _too_large(self.limit):
                        await send(message)
                    return
                break
        received = 0
        refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message: Message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    refused = True
                    for reply in _too_large(self.limit):
                        await send(reply)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, limited_receive, guarded_send)
