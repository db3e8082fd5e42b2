"""The model calls a real MCP server's tool in server mode: the scripted upstream asks for `mcp_<server>_<tool>`,
the gateway runs it on the fixture stdio server (plainly, and inside bubblewrap), and feeds the result back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.contrib.auth.models import User

from providers.models import Provider
from tests.gateway.test_toolloop_support import (  # noqa: F401  (fixtures)
    ASK,
    _quiet_metering,
    key,
    make_ws,
    post,
    provider,
    repo,
    sent,
    text,
    tool_names,
    tool_results,
    tool_use,
    turn,
    user,
)
from tests.mocks.anthropic_upstream import MockAnthropicUpstream

pytestmark = pytest.mark.django_db(transaction=True)


async def _server(make_server: Callable[..., Any], **fields: Any) -> Any:
    from asgiref.sync import sync_to_async

    return await sync_to_async(make_server)(**fields)


async def test_the_model_calls_an_mcp_tool_in_server_mode(
    key: str,  # noqa: F811
    user: User,  # noqa: F811
    make_ws: Any,  # noqa: F811
    provider: Provider,  # noqa: F811
    upstream: MockAnthropicUpstream,
    make_server: Callable[..., Any],
) -> None:
    await _server(make_server, name="echo")
    await make_ws(user, tool_execution_mode="server")
    upstream.enqueue(
        turn([tool_use("mcp_echo_echo", {"text": "hello-mcp"})], "tool_use", input_tokens=50, output_tokens=5)
    )
    upstream.enqueue(turn([text("the server said hello-mcp")], "end_turn", input_tokens=80, output_tokens=6))

    response = await post(key, ASK)

    assert response.status_code == 200, response.content
    assert orjson.loads(response.content)["content"] == [{"type": "text", "text": "the server said hello-mcp"}]
    first, second = sent(upstream)
    assert "mcp_echo_echo" in tool_names(first) and "workspace_mcp_call" in tool_names(first)
    (result,) = tool_results(second)
    assert "is_error" not in result
    assert orjson.loads(result["content"])["content"][0]["text"] == "hello-mcp"


async def test_a_sandboxed_mcp_server_writes_only_in_the_workspace_in_server_mode(
    key: str,  # noqa: F811
    user: User,  # noqa: F811
    make_ws: Any,  # noqa: F811
    provider: Provider,  # noqa: F811
    upstream: MockAnthropicUpstream,
    make_server: Callable[..., Any],
    repo: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    await _server(make_server, name="boxed", sandbox="bubblewrap")
    await make_ws(user, tool_execution_mode="server")
    outside = tmp_path / "outside"
    outside.mkdir()
    upstream.enqueue(
        turn(
            [
                tool_use("mcp_boxed_write_file", {"path": str(repo / "note.txt"), "text": "inside"}, "toolu_1"),
                tool_use("mcp_boxed_write_file", {"path": str(outside / "note.txt"), "text": "escape"}, "toolu_2"),
            ],
            "tool_use",
            input_tokens=50,
            output_tokens=5,
        )
    )
    upstream.enqueue(turn([text("done")], "end_turn", input_tokens=90, output_tokens=2))

    response = await post(key, ASK)

    assert response.status_code == 200, response.content
    inside, escape = tool_results(sent(upstream)[1])
    assert "is_error" not in inside and (repo / "note.txt").read_text() == "inside"
    assert escape["is_error"] is True and not (outside / "note.txt").exists()
