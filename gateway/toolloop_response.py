"""The HTTP answer of a server-mode request (gateway/toolloop.py): JSON, or an Anthropic SSE stream.

The first model call is opened before the response starts, so an error before the upstream's first content is an
HTTP error status exactly as on the ordinary path. Then every step is folded, and the client receives one message:

- JSON: the final step's answer (with the progress block first when the policy shows progress lines).
- SSE: ``message_start`` at once (its usage an estimate), then, while the steps and tools run, a ``ping`` every
  ``LYNKR_STREAM_PING_INTERVAL`` seconds without news, and, when the policy says so, a text block (index 0) that
  grows by one progress line per finished tool; then the final answer's blocks (indexes after the progress block),
  ``message_delta`` with the final step's whole usage, and ``message_stop``. Internal steps are never relayed, and
  the final one is replayed after it is complete: a step is known to be final only once it ended (text often
  precedes a tool_use in the same answer), so streaming it live would show internal steps or need the same
  buffering. An error after ``message_start`` ends the stream with an Anthropic ``error`` event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any, TypeVar

import orjson
from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse

from gateway.errors import GatewayError
from gateway.sse import Event, encode
from gateway.toolloop import LoopAnswer, Step, ToolLoop
from gateway.toolloop_blocks import answer_events, progress_events, start_event
from gateway.upstream import RequestContext
from workspace.info import WorkspaceInfo

logger = logging.getLogger(__name__)


async def messages_with_gateway_tools(
    ctx: RequestContext, body: dict[str, Any], headers: Mapping[str, str], workspace: WorkspaceInfo
) -> HttpResponse | StreamingHttpResponse:
    loop = ToolLoop(ctx, body, headers, workspace)
    await loop.prepare()
    first = await loop.open_step()
    if not body.get("stream"):
        answer = await loop.run(first)
        return _headed(HttpResponse(orjson.dumps(answer.message), content_type="application/json"), answer.step)
    streamed = StreamingHttpResponse(_sse(loop, first), content_type="text/event-stream; charset=utf-8")
    streamed["cache-control"] = "no-cache"
    streamed["x-accel-buffering"] = "no"  # nginx: do not buffer SSE
    return _headed(streamed, first)


_R = TypeVar("_R", HttpResponse, StreamingHttpResponse)


def _headed(response: _R, step: Step) -> _R:
    for name, value in step.meter.response_headers().items():
        response[name] = value
    response["x-lynkr-route"] = step.stream.rule
    response["x-lynkr-provider"] = step.stream.route.provider.name
    return response


async def _sse(loop: ToolLoop, first: Step) -> AsyncIterator[bytes]:
    news: asyncio.Queue[str | None] = asyncio.Queue()
    loop.on_progress = news.put_nowait
    task: asyncio.Task[LoopAnswer] = asyncio.ensure_future(loop.run(first))
    task.add_done_callback(lambda _: news.put_nowait(None))
    interval: float = settings.LYNKR_STREAM_PING_INTERVAL
    try:
        yield encode(start_event(loop.message_id, str(loop.body["model"]), loop.ctx.inbound.input_estimate))
        started = False
        while True:
            try:
                line = await asyncio.wait_for(news.get(), interval)
            except TimeoutError:
                yield encode({"type": "ping"})  # steps or tools still running: the connection stays alive
                continue
            if line is None:
                break
            yield b"".join(encode(event) for event in progress_events(line, started=started))
            started = True
        try:
            answer = task.result()
        except GatewayError as exc:
            yield encode(_error_event(exc.error_type, exc.message))
            return
        except Exception:
            logger.exception("request_id=%s tool loop failed", loop.ctx.request_id)
            yield encode(_error_event("api_error", "internal gateway error"))
            return
        events = answer_events(answer.message, skip=answer.progress_blocks)
        if started:
            events.insert(0, {"type": "content_block_stop", "index": 0})
        yield b"".join(encode(event) for event in events)
    finally:
        if not task.done():
            task.cancel()  # the client left: the step in flight is billed by the loop's own finally
        await asyncio.gather(task, return_exceptions=True)


def _error_event(error_type: str, message: str) -> Event:
    return {"type": "error", "error": {"type": error_type, "message": message}}
