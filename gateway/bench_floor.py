"""The benchmark's FLOOR: an empty django-ninja async endpoint served by the gateway's own process (bench/README.md).

It parses the request body exactly as /v1/messages starts (orjson) and answers a canned Anthropic message, as JSON
or as the same number of SSE events the mock upstream streams (``?chunks=N``) in one write, as the gateway relays
an answer that arrives in one read, so LYNKR - FLOOR is the gateway's
own work per request: auth, routing, translation, the upstream call and accounting. Mounted only when
``LYNKR_BENCH_FLOOR=1`` (read from the environment, not settings: it exists for bench/run.py alone and must never be
switched on by a deployment's configuration file); it authenticates nothing and touches no database.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import orjson
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import URLPattern, URLResolver, path
from ninja import NinjaAPI

floor_api = NinjaAPI(title="Lynkr bench floor", urls_namespace="lynkr-bench-floor", docs_url=None, openapi_url=None)

_MESSAGE = {
    "id": "msg_floor",
    "type": "message",
    "role": "assistant",
    "model": "floor",
    "content": [{"type": "text", "text": "ok"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 1, "output_tokens": 1},
}
_JSON = orjson.dumps(_MESSAGE)


def _event(name: str, data: dict[str, object]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


_START = _event("message_start", {"type": "message_start", "message": {**_MESSAGE, "content": []}})
_START += _event("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}})
_DELTA = _event(
    "content_block_delta",
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lorem ipsum dolor sit amet"}},
)
_END = _event("content_block_stop", {"type": "content_block_stop", "index": 0})
_END += _event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {}})
_END += _event("message_stop", {"type": "message_stop"})


async def _events(chunks: int) -> AsyncIterator[bytes]:
    # Written as the gateway writes a stream: one ASGI body message per upstream read (gateway/upstream.py
    # ``batches()``), and the mock sends a whole answer in one write when it has no chunk interval (the cells).
    yield _START + _DELTA * chunks + _END


@floor_api.post("/v1/messages")
async def floor_messages(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    body = orjson.loads(request.body)
    if isinstance(body, dict) and body.get("stream"):
        try:
            chunks = max(1, min(int(request.GET.get("chunks", "1")), 1000))
        except ValueError:
            chunks = 1
        return StreamingHttpResponse(_events(chunks), content_type="text/event-stream; charset=utf-8")
    return HttpResponse(_JSON, content_type="application/json")


def floor_urlpatterns() -> list[URLPattern | URLResolver]:
    """``bench/floor/v1/messages`` when LYNKR_BENCH_FLOOR=1, else nothing."""
    if os.environ.get("LYNKR_BENCH_FLOOR") != "1":
        return []
    return [path("bench/floor/", floor_api.urls)]
