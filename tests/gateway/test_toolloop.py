"""The server-side tool loop through /v1/messages (JSON answers): gateway tools run, client tools go back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from django.contrib.auth.models import User

from gateway.metering import usage_flush
from gateway.models import UsageRecord
from providers.models import Provider
from tests.gateway.test_toolloop_support import (
    ASK,
    BASH,
    _quiet_metering,
    key,
    make_ws,
    post,
    provider,
    repo,
    request_records,
    sent,
    text,
    tool_names,
    tool_results,
    tool_use,
    turn,
    turns,
    user,
)
from tests.mocks.anthropic_upstream import MockAnthropicUpstream, error_response
from workspace.models import Workspace
from workspace.tools.registry import ToolError, ToolSpec

__all__ = ["_quiet_metering", "key", "make_ws", "provider", "repo", "user"]  # fixtures, imported for pytest

pytestmark = pytest.mark.django_db(transaction=True)

MakeWs = Callable[..., Awaitable[Workspace]]


async def test_gateway_tool_runs_and_only_the_final_answer_reaches_the_client(
    key: str, user: User, make_ws: MakeWs, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    await make_ws(user, tool_execution_mode="server")
    upstream.enqueue(turn([tool_use("fs_read", {"path": "src/app.py"})], "tool_use", input_tokens=100, output_tokens=7))
    upstream.enqueue(turn([text("helper returns 42")], "end_turn", input_tokens=180, output_tokens=5))

    response = await post(key, ASK)

    assert response.status_code == 200, response.content
    body = orjson.loads(response.content)
    assert body["content"] == [{"type": "text", "text": "helper returns 42"}]
    assert body["stop_reason"] == "end_turn" and body["model"] == "claude-sonnet-5"
    assert (body["usage"]["input_tokens"], body["usage"]["output_tokens"]) == (180, 5)  # the final step's
    first, second = sent(upstream)
    # The gateway's tools follow the client's; the client's own tool list is kept first and whole.
    assert tool_names(first)[0] == "Bash" and {"fs_read", "workspace_symbol_search"} <= set(tool_names(first))
    assert "tool_choice" not in first
    # The tool ran in the workspace and its result went to the model in the second call.
    assert second["messages"][:1] == ASK["messages"]
    assert second["messages"][1] == {"role": "assistant", "content": [tool_use("fs_read", {"path": "src/app.py"})]}
    (result,) = tool_results(second)
    assert result["tool_use_id"] == "toolu_1" and "is_error" not in result
    assert orjson.loads(result["content"])["content"].startswith("def helper():\n    return 42")
    assert tool_names(second) == tool_names(first)


async def test_each_model_call_is_one_usage_record_and_they_sum_to_the_upstreams(
    key: str, user: User, make_ws: MakeWs, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    await make_ws(user, tool_execution_mode="server")
    upstream.enqueue(turn([tool_use("fs_read", {"path": "README.md"})], "tool_use", input_tokens=100, output_tokens=7))
    upstream.enqueue(turn([text("done")], "end_turn", input_tokens=180, output_tokens=5))

    response = await post(key, ASK)
    await usage_flush()

    request_id = response.headers["request-id"]
    rows = await request_records()
    assert [r.record_id for r in rows] == [f"{request_id}:request", f"{request_id}:step:2:request"]
    assert {r.request_id for r in rows} == {request_id}
    assert sorted((r.input_tokens, r.output_tokens) for r in rows) == [(100, 7), (180, 5)]
    assert all(r.status == 200 and r.provider == "up" for r in rows)
    attempts = await _count_attempts()
    assert attempts == 2  # one upstream attempt per step, each with its own record


async def _count_attempts() -> int:
    return await UsageRecord.objects.filter(kind="attempt").acount()


async def test_client_tool_use_goes_back_untouched_with_internal_turns_in_the_transcript(
    key: str, user: User, make_ws: MakeWs, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    await make_ws(user, tool_execution_mode="server")
    bash = tool_use("Bash", {"command": "pytest -q"}, "toolu_bash")
    upstream.enqueue(turn([tool_use("fs_read", {"path": "src/app.py"})], "tool_use", input_tokens=10, output_tokens=3))
    upstream.enqueue(turn([text("Running the tests."), bash], "tool_use", input_tokens=20, output_tokens=4))

    response = await post(key, ASK, **{"x-claude-code-session-id": "loop-session"})
    await usage_flush()

    body = orjson.loads(response.content)
    assert body["content"] == [text("Running the tests."), bash] and body["stop_reason"] == "tool_use"
    assert len(sent(upstream)) == 2
    (row,) = await turns()
    # The request's message, then the gateway's internal assistant tool_use and user tool_result turns.
    roles = [(m["role"], [b.get("type") for b in m["content"]] if isinstance(m["content"], list) else "text")
             for m in row.new_messages]  # fmt: skip
    assert roles == [("user", "text"), ("assistant", ["tool_use"]), ("user", ["tool_result"])]
    assert row.response is not None and row.response["content"] == [text("Running the tests."), bash]


async def test_mixed_answer_returns_only_the_client_calls_and_runs_nothing(
    key: str, user: User, make_ws: MakeWs, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    await make_ws(user, tool_execution_mode="server")
    bash = tool_use("Bash", {"command": "ls"}, "toolu_bash")
    mixed = [text("Both."), tool_use("fs_read", {"path": "src/app.py"}, "toolu_fs"), bash]
    upstream.enqueue(turn(mixed, "tool_use", input_tokens=10, output_tokens=3))

    body = orjson.loads((await post(key, ASK)).content)

    assert body["content"] == [text("Both."), bash] and body["stop_reason"] == "tool_use"
    assert len(sent(upstream)) == 1


async def test_client_tool_with_a_gateway_tool_name_wins(
    key: str, user: User, make_ws: MakeWs, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    await make_ws(user, tool_execution_mode="server")
    mine = {"name": "fs_read", "description": "the client's own", "input_schema": {"type": "object"}}
    upstream.enqueue(turn([tool_use("fs_read", {"path": "x"})], "tool_use", input_tokens=10, output_tokens=3))

    body = orjson.loads((await post(key, {**ASK, "tools": [mine]})).content)

    assert body["content"] == [tool_use("fs_read", {"path": "x"})]
    (first,) = sent(upstream)
    assert [t for t in first["tools"] if t["name"] == "fs_read"] == [mine]


async def test_max_steps_forces_a_text_answer_on_the_last_call(
    key: str, user: User, make_ws: MakeWs, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    await make_ws(user, tool_execution_mode="server", max_steps=2)
    for n in (1, 2):  # a model that keeps asking, even when told not to
        upstream.enqueue(turn([tool_use("fs_read", {"path": "README.md"}, f"t{n}")], "tool_use",
                              input_tokens=10, output_tokens=3))  # fmt: skip

    body = orjson.loads((await post(key, ASK)).content)

    first, second = sent(upstream)
    assert "tool_choice" not in first and second["tool_choice"] == {"type": "none"}
    assert tool_names(second) == tool_names(first)  # still listed: the history holds tool_use blocks
    assert [b["type"] for b in body["content"]] == ["text"] and body["stop_reason"] == "end_turn"
    assert "tool limit" in body["content"][0]["text"] and "max_steps=2" in body["content"][0]["text"]


async def test_max_tool_calls_refuses_the_calls_beyond_it(
    key: str, user: User, make_ws: MakeWs, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    await make_ws(user, tool_execution_mode="server", max_tool_calls=1)
    two = [tool_use("fs_read", {"path": "README.md"}, "t1"), tool_use("fs_read", {"path": "src/app.py"}, "t2")]
    upstream.enqueue(turn(two, "tool_use", input_tokens=10, output_tokens=3))
    upstream.enqueue(turn([text("read one")], "end_turn", input_tokens=20, output_tokens=3))

    body = orjson.loads((await post(key, ASK)).content)

    assert body["content"] == [text("read one")]
    _, second = sent(upstream)
    ran, refused = tool_results(second)
    assert "is_error" not in ran and "# Demo" in orjson.loads(ran["content"])["content"]
    assert refused["is_error"] is True and "limit of 1 gateway tool calls" in refused["content"]
    assert second["tool_choice"] == {"type": "none"}  # no call left: the model must answer


async def test_a_failing_tool_is_an_error_result_for_the_model(
    key: str, user: User, make_ws: MakeWs, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    await make_ws(user, tool_execution_mode="server")
    upstream.enqueue(turn([tool_use("fs_read", {"path": "missing.py"})], "tool_use", input_tokens=10, output_tokens=3))
    upstream.enqueue(turn([tool_use("fs_read", {"path": ".env"}, "t2")], "tool_use", input_tokens=10, output_tokens=3))
    upstream.enqueue(turn([text("no such file")], "end_turn", input_tokens=20, output_tokens=3))

    body = orjson.loads((await post(key, ASK)).content)

    assert body["content"] == [text("no such file")]
    _, second, third = sent(upstream)
    (missing,) = tool_results(second)
    assert missing["is_error"] is True and "missing.py" in missing["content"]
    (denied,) = tool_results(third)
    assert denied["is_error"] is True and ".env" in denied["content"]


async def test_an_upstream_error_in_an_internal_step_ends_the_request_with_it(
    key: str, user: User, make_ws: MakeWs, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    await make_ws(user, tool_execution_mode="server")
    upstream.enqueue(turn([tool_use("fs_read", {"path": "README.md"})], "tool_use", input_tokens=10, output_tokens=3))
    upstream.enqueue(error_response(400, "invalid_request_error", "prompt is too long"))

    response = await post(key, ASK, **{"x-claude-code-session-id": "failing"})
    await usage_flush()

    assert response.status_code == 400
    error = orjson.loads(response.content)["error"]
    assert error["type"] == "invalid_request_error" and "prompt is too long" in error["message"]
    rows = await request_records()
    assert [(r.status, r.input_tokens) for r in rows] == [(200, 10), (400, 0)]
    (row,) = await turns()  # the failed last step carries the turn: the internal turns, no answer
    assert [m["role"] for m in row.new_messages] == ["user", "assistant", "user"] and row.response is None


async def test_client_mode_adds_no_tools_and_runs_nothing(
    key: str, user: User, make_ws: MakeWs, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    await make_ws(user, tool_execution_mode="client")
    upstream.enqueue(turn([tool_use("fs_read", {"path": "README.md"})], "tool_use", input_tokens=10, output_tokens=3))

    body = orjson.loads((await post(key, ASK)).content)

    assert body["content"] == [tool_use("fs_read", {"path": "README.md"})]  # returned as is, not run
    (first,) = sent(upstream)
    assert tool_names(first) == ["Bash"]


async def test_server_mode_is_per_workspace_policy(
    key: str, user: User, make_ws: MakeWs, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    from gateway.services import apikey_create

    other = await User.objects.acreate(username="server-user")
    other_key = (await _sync(apikey_create)(user=other)).secret
    await make_ws(user, tool_execution_mode="client")
    await make_ws(other, tool_execution_mode="server")
    upstream.enqueue(turn([text("a")], "end_turn", input_tokens=1, output_tokens=1))
    upstream.enqueue(turn([text("b")], "end_turn", input_tokens=1, output_tokens=1))

    await post(key, ASK)
    await post(other_key, ASK)

    client_call, server_call = sent(upstream)
    assert tool_names(client_call) == ["Bash"]
    assert "fs_read" in tool_names(server_call)
    # Naming the other user's workspace is refused, like a workspace that does not exist.
    refused = await post(key, ASK, **{"x-lynkr-workspace": "loop-ws-2"})
    assert refused.status_code == 403
    assert orjson.loads(refused.content)["error"]["type"] == "permission_error"


def _sync(func: Any) -> Any:
    from asgiref.sync import sync_to_async

    return sync_to_async(func)


async def test_no_workspace_is_todays_path(key: str, provider: Provider, upstream: MockAnthropicUpstream) -> None:
    upstream.enqueue(turn([tool_use("fs_read", {"path": "x"})], "tool_use", input_tokens=1, output_tokens=1))

    body = orjson.loads((await post(key, ASK)).content)

    assert body["content"] == [tool_use("fs_read", {"path": "x"})]
    (first,) = sent(upstream)
    assert first["tools"] == [BASH] and first["messages"] == ASK["messages"]


@pytest.mark.parametrize("mode", ["client", "server"])
async def test_policy_without_transcripts_stores_no_turn_but_records_usage(
    mode: str, key: str, user: User, make_ws: MakeWs, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    await make_ws(user, tool_execution_mode=mode, record_transcripts=False)
    upstream.enqueue(turn([text("private")], "end_turn", input_tokens=3, output_tokens=2))

    response = await post(key, ASK, **{"x-claude-code-session-id": "private-session"})
    await usage_flush()

    assert response.status_code == 200
    assert await turns() == []
    (row,) = await request_records()
    assert row.session_id is not None and (row.input_tokens, row.output_tokens) == (3, 2)


async def test_policy_with_transcripts_stores_the_turn(
    key: str, user: User, make_ws: MakeWs, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    await make_ws(user, tool_execution_mode="client")
    upstream.enqueue(turn([text("kept")], "end_turn", input_tokens=3, output_tokens=2))

    await post(key, ASK, **{"x-claude-code-session-id": "kept-session"})
    await usage_flush()

    (row,) = await turns()
    assert row.response is not None and row.response["content"] == [text("kept")]


async def test_one_step_policy_sends_the_request_as_is(
    key: str, user: User, make_ws: MakeWs, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    await make_ws(user, tool_execution_mode="server", max_steps=1)
    upstream.enqueue(turn([text("plain")], "end_turn", input_tokens=1, output_tokens=1))

    body = orjson.loads((await post(key, ASK)).content)

    assert body["content"] == [text("plain")]
    (first,) = sent(upstream)
    assert first["tools"] == [BASH]


async def test_a_forced_tool_choice_applies_to_the_first_call_only(
    key: str, user: User, make_ws: MakeWs, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    await make_ws(user, tool_execution_mode="server")
    upstream.enqueue(turn([tool_use("fs_read", {"path": "README.md"})], "tool_use", input_tokens=1, output_tokens=1))
    upstream.enqueue(turn([text("read")], "end_turn", input_tokens=1, output_tokens=1))
    choice = {"type": "any", "disable_parallel_tool_use": True}

    body = orjson.loads((await post(key, {**ASK, "tool_choice": choice})).content)

    assert body["content"] == [text("read")]
    first, second = sent(upstream)
    assert first["tool_choice"] == choice
    assert second["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


async def test_a_gateway_call_cut_by_max_tokens_is_not_run_nor_shown(
    key: str, user: User, make_ws: MakeWs, provider: Provider, upstream: MockAnthropicUpstream
) -> None:
    await make_ws(user, tool_execution_mode="server")
    cut = [text("Reading"), tool_use("fs_read", {"path": "README.md"})]
    upstream.enqueue(turn(cut, "max_tokens", input_tokens=1, output_tokens=1))

    body = orjson.loads((await post(key, ASK)).content)

    assert len(sent(upstream)) == 1
    assert body["stop_reason"] == "max_tokens"
    assert [b["type"] for b in body["content"]] == ["text", "text"]
    assert "stopped (max_tokens)" in body["content"][1]["text"] and "fs_read" in body["content"][1]["text"]


class _FakeMcpProvider:
    """A per-caller tool provider like mcp_app's: one tool that fails as a tool, one that crashes."""

    def __init__(self) -> None:
        def refuse(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
            raise ToolError("MCP server fake failed: upstream service unavailable")

        def crash(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
            raise RuntimeError("bug")

        schema = {"type": "object", "properties": {}}
        self._specs = [ToolSpec("mcp_fake_refuse", "[MCP server fake] refuses", schema, refuse),
                       ToolSpec("mcp_fake_crash", "[MCP server fake] crashes", schema, crash)]  # fmt: skip

    def specs(self, context: Any) -> list[ToolSpec]:
        return self._specs

    def get(self, name: str, context: Any) -> ToolSpec | None:
        return next((s for s in self._specs if s.name == name), None)


async def test_provider_tools_are_offered_and_their_failures_reach_the_model(
    key: str,
    user: User,
    make_ws: MakeWs,
    provider: Provider,
    upstream: MockAnthropicUpstream,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from workspace.tools import registry

    monkeypatch.setattr(registry, "_providers", [_FakeMcpProvider()])
    await make_ws(user, tool_execution_mode="server")
    calls = [tool_use("mcp_fake_refuse", {}, "t1"), tool_use("mcp_fake_crash", {}, "t2")]
    upstream.enqueue(turn(calls, "tool_use", input_tokens=1, output_tokens=1))
    upstream.enqueue(turn([text("both failed")], "end_turn", input_tokens=1, output_tokens=1))

    body = orjson.loads((await post(key, ASK)).content)

    assert body["content"] == [text("both failed")]
    first, second = sent(upstream)
    assert {"mcp_fake_refuse", "mcp_fake_crash"} <= set(tool_names(first))
    refused, crashed = tool_results(second)
    assert refused == {"type": "tool_result", "tool_use_id": "t1", "is_error": True,
                       "content": "MCP server fake failed: upstream service unavailable"}  # fmt: skip
    assert crashed["is_error"] is True and crashed["content"] == "internal error running the tool"
