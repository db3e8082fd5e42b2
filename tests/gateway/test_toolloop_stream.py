"""The server-side tool loop streamed: one valid Anthropic SSE message (parsed by the official SDK), internal
steps hidden or reported as progress lines, pings while steps run, errors as an error event, disconnects billed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User

from gateway.metering import usage_flush
from providers.models import Provider
from tests.gateway.test_toolloop_support import (
    ASK,
    _quiet_metering,
    drain,
    frames,
    key,
    make_ws,
    post,
    provider,
    repo,
    request_records,
    sdk_stream,
    sent,
    text,
    tool_results,
    tool_use,
    turn,
    user,
)
from tests.mocks.anthropic_upstream import MockAnthropicUpstream, ScriptedResponse, error_response
from workspace.indexer import index_rebuild
from workspace.models import Workspace

__all__ = ["_quiet_metering", "key", "make_ws", "provider", "repo", "user"]  # fixtures, imported for pytest

pytestmark = pytest.mark.django_db(transaction=True)

MakeWs = Callable[..., Awaitable[Workspace]]
STREAM = {**ASK, "stream": True}


def _two_turns(upstream: MockAnthropicUpstream, final: str = "helper returns 42") -> None:
    search = tool_use("workspace_symbol_search", {"query": "helper"})
    upstream.enqueue(turn([text("Let me look."), search], "tool_use", input_tokens=100, output_tokens=9))
    upstream.enqueue(turn([text(final)], "end_turn", input_tokens=150, output_tokens=6))


async def _indexed(make_ws: MakeWs, user: User, **policy: object) -> Workspace:
    workspace = await make_ws(user, tool_execution_mode="server", **policy)
    await sync_to_async(index_rebuild)(workspace_id=workspace.pk)
    return workspace


async def test_stream_carries_only_the_final_answer(
    key: str, user: User, make_ws: MakeWs, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    await _indexed(make_ws, user)
    _two_turns(upstream)

    response = await post(key, STREAM)
    assert response.status_code == 200 and response["content-type"].startswith("text/event-stream")
    raw = await drain(response)

    message, events = sdk_stream(raw)
    assert [(b.type, b.text) for b in message.content] == [("text", "helper returns 42")]
    assert message.stop_reason == "end_turn" and message.model == "claude-sonnet-5"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (150, 6)  # the final step's usage
    kinds = [name for name, _ in frames(raw)]
    assert kinds.count("message_start") == 1 and kinds.count("message_delta") == 1 and kinds[-1] == "message_stop"
    assert "Let me look." not in raw.decode()  # the internal step's text is not shown
    # The symbol search ran on the real index and its hit reached the model.
    (result,) = tool_results(sent(upstream)[1])
    (symbol,) = orjson.loads(result["content"])["symbols"]
    assert (symbol["name"], symbol["path"], symbol["line"]) == ("helper", "src/app.py", 1)
    assert len(events) > 0


async def test_progress_lines_come_first_in_their_own_block(
    key: str, user: User, make_ws: MakeWs, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    await _indexed(make_ws, user, progress_lines=True)
    _two_turns(upstream)

    raw = await drain(await post(key, STREAM))

    message, _ = sdk_stream(raw)
    progress, final = message.content
    assert progress.text == '⏺ workspace_symbol_search(query="helper") → 1 result\n'
    assert final.text == "helper returns 42"
    order = [(name, data.get("index")) for name, data in frames(raw) if name.startswith("content_block")]
    assert order[0] == ("content_block_start", 0) and ("content_block_stop", 0) in order
    assert order.index(("content_block_stop", 0)) < order.index(("content_block_start", 1))


async def test_progress_lines_in_a_json_answer(
    key: str, user: User, make_ws: MakeWs, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    await make_ws(user, tool_execution_mode="server", progress_lines=True)
    upstream.enqueue(turn([tool_use("fs_read", {"path": "missing.py"})], "tool_use", input_tokens=5, output_tokens=2))
    upstream.enqueue(turn([text("not there")], "end_turn", input_tokens=9, output_tokens=2))

    body = orjson.loads((await post(key, ASK)).content)

    progress, final = body["content"]
    assert progress["text"].startswith('⏺ fs_read(path="missing.py") → error: ') and "missing.py" in progress["text"]
    assert final == text("not there")


async def test_pings_keep_the_stream_alive_while_steps_run(
    key: str, user: User, make_ws: MakeWs, provider: Provider, upstream: MockAnthropicUpstream, settings: object
) -> None:
    settings.LYNKR_STREAM_PING_INTERVAL = 0.05  # type: ignore[attr-defined]
    await make_ws(user, tool_execution_mode="server")
    upstream.enqueue(turn([tool_use("fs_read", {"path": "README.md"})], "tool_use", input_tokens=5, output_tokens=2))
    slow = turn([text("ok")], "end_turn", input_tokens=9, output_tokens=2)
    slow.delay = 0.6  # the second model call takes a while: far more than one ping interval
    upstream.enqueue(slow)

    raw = await drain(await post(key, STREAM))

    kinds = [name for name, _ in frames(raw)]
    assert kinds[0] == "message_start" and "ping" in kinds[1 : kinds.index("content_block_start")]
    message, _ = sdk_stream(raw)
    assert [b.text for b in message.content] == ["ok"]


async def test_client_tool_use_is_streamed_to_the_client(
    key: str, user: User, make_ws: MakeWs, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    await make_ws(user, tool_execution_mode="server")
    upstream.enqueue(turn([tool_use("fs_read", {"path": "README.md"})], "tool_use", input_tokens=5, output_tokens=2))
    bash = tool_use("Bash", {"command": "make test"}, "toolu_bash")
    upstream.enqueue(turn([bash], "tool_use", input_tokens=9, output_tokens=2))

    message, _ = sdk_stream(await drain(await post(key, STREAM)))

    (block,) = message.content
    assert (block.type, block.name, block.input, block.id) == (
        "tool_use",
        "Bash",
        {"command": "make test"},
        "toolu_bash",
    )
    assert message.stop_reason == "tool_use"


async def test_error_in_a_later_step_ends_the_stream_with_an_error_event(
    key: str, user: User, make_ws: MakeWs, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    await make_ws(user, tool_execution_mode="server")
    upstream.enqueue(turn([tool_use("fs_read", {"path": "README.md"})], "tool_use", input_tokens=5, output_tokens=2))
    upstream.enqueue(error_response(400, "invalid_request_error", "bad second call"))

    response = await post(key, STREAM)
    assert response.status_code == 200  # the first call answered, so the stream had started
    parsed = frames(await drain(response))

    assert parsed[0][0] == "message_start"
    name, data = parsed[-1]
    assert name == "error" and data["error"]["type"] == "invalid_request_error"
    assert "bad second call" in data["error"]["message"]


async def test_error_in_the_first_step_is_an_http_error(
    key: str, user: User, make_ws: MakeWs, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    await make_ws(user, tool_execution_mode="server")
    upstream.enqueue(error_response(400, "invalid_request_error", "bad first call"))

    response = await post(key, STREAM)

    assert response.status_code == 400
    assert orjson.loads(response.content)["error"]["type"] == "invalid_request_error"


async def test_a_client_gone_mid_loop_still_bills_every_model_call(
    key: str, user: User, make_ws: MakeWs, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    await make_ws(user, tool_execution_mode="server")
    upstream.enqueue(turn([tool_use("fs_read", {"path": "README.md"})], "tool_use", input_tokens=5, output_tokens=2))
    upstream.enqueue(ScriptedResponse(body={}, hang_after=0))  # the second call never answers
    response = await post(key, STREAM)
    started = asyncio.Event()

    async def client() -> None:
        async for _ in response.streaming_content:
            started.set()

    reader = asyncio.create_task(client())
    await asyncio.wait_for(started.wait(), 10)
    for _ in range(1000):  # until the second model call is in flight
        if len(upstream.messages_requests) == 2:
            break
        await asyncio.sleep(0.01)
    assert len(upstream.messages_requests) == 2
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    await usage_flush()

    first, second = await request_records()
    assert (first.status, first.input_tokens, first.output_tokens) == (200, 5, 2)
    assert second.status >= 500 and second.input_tokens == 0
