"""MCP servers' tools in the workspace tool registry: mcp_<server>_<tool>, workspace_mcp_servers/_call, access."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import override_settings

from mcp_app.tools import exposed_name, tool_schema
from workspace.info import ToolContext
from workspace.tools.registry import ToolDenied, ToolError, ToolNotFound, tool_call, tools_for_context

pytestmark = pytest.mark.django_db


@pytest.fixture
def ctx(make_workspace: Callable[..., ToolContext], tmp_path: Path) -> ToolContext:
    return make_workspace(tmp_path)


def _names(context: ToolContext) -> set[str]:
    return {spec.name for spec in tools_for_context(context)}


def test_tools_are_listed_as_mcp_server_tool(make_server: Callable[..., Any], ctx: ToolContext) -> None:
    make_server()
    specs = {spec.name: spec for spec in tools_for_context(ctx)}
    assert {"mcp_echo_echo", "mcp_echo_add", "mcp_echo_sleep", "workspace_mcp_servers", "workspace_mcp_call"} <= set(
        specs
    )
    add = specs["mcp_echo_add"]
    assert add.input_schema["type"] == "object" and add.input_schema["required"] == ["a", "b"]
    assert add.description.startswith("[MCP server echo] Add two integers")
    # Listing again uses the cached tool list: the very same specs.
    again = {spec.name: spec for spec in tools_for_context(ctx)}
    assert again["mcp_echo_add"] is add


def test_calling_a_server_tool_through_the_registry(make_server: Callable[..., Any], ctx: ToolContext) -> None:
    make_server()
    result = tool_call(name="mcp_echo_add", arguments={"a": 20, "b": 22}, context=ctx)
    assert result == {"content": [{"type": "text", "text": "42"}], "structured_content": {"result": 42}}
    with pytest.raises(ToolError, match="invalid arguments for mcp_echo_add: arguments: 'b' is a required property"):
        tool_call(name="mcp_echo_add", arguments={"a": 1}, context=ctx)
    with pytest.raises(ToolError, match=r"^fail \(MCP server echo\) failed: .*disk full$"):
        tool_call(name="mcp_echo_fail", arguments={"message": "disk full"}, context=ctx)


def test_workspace_mcp_servers_and_call(make_server: Callable[..., Any], ctx: ToolContext) -> None:
    make_server()
    listing = tool_call(name="workspace_mcp_servers", arguments={}, context=ctx)
    (server,) = listing["servers"]
    assert server["name"] == "echo" and server["transport"] == "stdio"
    tools = {item["tool"]: item for item in server["tools"]}
    assert tools["echo"]["tool_name"] == "mcp_echo_echo"
    assert tools["echo"]["input_schema"]["properties"]["text"]["type"] == "string"
    result = tool_call(
        name="workspace_mcp_call",
        arguments={"server": "echo", "tool": "echo", "arguments": {"text": "hi"}},
        context=ctx,
    )
    assert result["content"] == [{"type": "text", "text": "hi"}]
    with pytest.raises(ToolError, match="invalid arguments for echo: arguments: 'text' is a required property"):
        tool_call(name="workspace_mcp_call", arguments={"server": "echo", "tool": "echo"}, context=ctx)
    with pytest.raises(ToolError, match=r"^MCP server 'echo' has no tool 'rm'$"):
        tool_call(name="workspace_mcp_call", arguments={"server": "echo", "tool": "rm"}, context=ctx)
    with pytest.raises(ToolError, match=r"^no such MCP server 'nope'$"):
        tool_call(name="workspace_mcp_call", arguments={"server": "nope", "tool": "echo"}, context=ctx)


def test_a_hung_tool_is_a_clear_tool_error(make_server: Callable[..., Any], ctx: ToolContext) -> None:
    make_server(name="slow", timeout_seconds=1)
    with pytest.raises(ToolError, match=r"^MCP server slow did not answer tools/call within 1 s$"):
        tool_call(name="mcp_slow_sleep", arguments={"seconds": 1.5}, context=ctx)


def _refusals(context: ToolContext, server: str) -> list[str]:
    messages = []
    for name, arguments in (
        (f"mcp_{server}_echo", {"text": "x"}),
        ("workspace_mcp_call", {"server": server, "tool": "echo", "arguments": {"text": "x"}}),
        ("workspace_mcp_servers", {"server": server}),
    ):
        with pytest.raises(ToolError) as caught:
            tool_call(name=name, arguments=arguments, context=context)
        messages.append(str(caught.value).replace(server, "<server>"))
    return messages


def test_a_user_without_access_sees_nothing_and_cannot_call(
    make_server: Callable[..., Any], make_workspace: Callable[..., ToolContext], tmp_path: Path
) -> None:
    allowed = make_workspace(tmp_path)
    outsider = make_workspace(tmp_path)
    row = make_server(name="private")
    row.allowed_users.add(User.objects.get(pk=allowed.user_id))
    assert "mcp_private_echo" in _names(allowed)
    assert not any(name.startswith("mcp_private_") for name in _names(outsider))
    assert tool_call(name="workspace_mcp_servers", arguments={}, context=outsider) == {"servers": []}
    # Exactly the refusals of a server that does not exist.
    assert _refusals(outsider, "private") == _refusals(outsider, "ghost")
    with pytest.raises(ToolNotFound, match="unknown tool 'mcp_private_echo'"):
        tool_call(name="mcp_private_echo", arguments={"text": "x"}, context=outsider)
    # A group grant opens it.
    team = Group.objects.create(name="team")
    row.allowed_groups.add(team)
    User.objects.get(pk=outsider.user_id).groups.add(team)
    assert tool_call(name="mcp_private_echo", arguments={"text": "ok"}, context=outsider)["content"][0]["text"] == "ok"


def test_a_disabled_server_is_invisible(make_server: Callable[..., Any], ctx: ToolContext) -> None:
    make_server(name="off", enabled=False)
    assert not any(name.startswith("mcp_off_") for name in _names(ctx))
    assert _refusals(ctx, "off") == _refusals(ctx, "ghost")


def test_server_tool_allow_and_deny_globs(make_server: Callable[..., Any], ctx: ToolContext) -> None:
    make_server(name="some", tool_allow=["e*", "add"], tool_deny=["env"])
    assert {name for name in _names(ctx) if name.startswith("mcp_some_")} == {"mcp_some_echo", "mcp_some_add"}
    with pytest.raises(ToolNotFound):
        tool_call(name="mcp_some_env", arguments={"name": "PATH"}, context=ctx)
    with pytest.raises(ToolError, match=r"^MCP server 'some' has no tool 'env'$"):
        tool_call(name="workspace_mcp_call", arguments={"server": "some", "tool": "env"}, context=ctx)
    listed = tool_call(name="workspace_mcp_servers", arguments={"server": "some"}, context=ctx)
    assert {item["tool"] for item in listed["servers"][0]["tools"]} == {"echo", "add"}


def test_the_workspace_policy_applies_to_mcp_tools(
    make_server: Callable[..., Any], make_workspace: Callable[..., ToolContext], tmp_path: Path
) -> None:
    make_server()
    ctx = make_workspace(tmp_path, policy={"denied_tools": ["mcp_echo_env", "mcp_echo_crash"]})
    names = _names(ctx)
    assert "mcp_echo_echo" in names and "mcp_echo_env" not in names
    with pytest.raises(ToolDenied, match="not allowed by policy"):
        tool_call(name="mcp_echo_env", arguments={"name": "PATH"}, context=ctx)
    # workspace_mcp_call cannot go around the policy.
    with pytest.raises(ToolDenied, match="'mcp_echo_crash' is not allowed by policy"):
        tool_call(name="workspace_mcp_call", arguments={"server": "echo", "tool": "crash"}, context=ctx)
    listed = tool_call(name="workspace_mcp_servers", arguments={}, context=ctx)
    assert "env" not in {item["tool"] for item in listed["servers"][0]["tools"]}


def test_output_is_bounded_by_the_tool_output_limit(make_server: Callable[..., Any], ctx: ToolContext) -> None:
    make_server()
    with override_settings(LYNKR_TOOL_OUTPUT_MAX_BYTES=1024):
        result = tool_call(name="mcp_echo_echo", arguments={"text": "é" * 5000}, context=ctx)
    assert result["truncated"] is True
    assert len(result["content"][0]["text"].encode()) <= 1024
    assert "structured_content" not in result


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_a_sandboxed_server_works_in_the_callers_workspace(
    make_server: Callable[..., Any], make_workspace: Callable[..., ToolContext], tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    ctx = make_workspace(root)
    make_server(name="boxed", sandbox="bubblewrap")
    written = tool_call(name="mcp_boxed_write_file", arguments={"path": str(root / "a.txt"), "text": "hi"}, context=ctx)
    assert written["content"][0]["text"].startswith("wrote 2 characters")
    assert (root / "a.txt").read_text(encoding="utf-8") == "hi"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.raises(ToolError, match="No such file or directory"):
        tool_call(
            name="workspace_mcp_call",
            arguments={
                "server": "boxed",
                "tool": "write_file",
                "arguments": {"path": str(elsewhere / "b"), "text": "x"},
            },
            context=ctx,
        )
    assert not (elsewhere / "b").exists()


def test_exposed_names_are_sanitised_and_bounded() -> None:
    assert exposed_name("echo", "read.file") == "mcp_echo_read_file"
    long = exposed_name("server", "t" * 100)
    assert len(long) == 64 and long.startswith("mcp_server_ttt")
    assert long != exposed_name("server", "t" * 101)
    assert exposed_name("echo", "a.b", hashed=True) != exposed_name("echo", "a_b", hashed=True)


def test_tool_schema_is_always_an_object_schema() -> None:
    assert tool_schema({"type": "object", "properties": {"x": {"type": "integer"}}})["properties"]["x"] == {
        "type": "integer"
    }
    assert tool_schema({"properties": {"x": {"type": "string"}}})["type"] == "object"
    assert tool_schema({"type": "string"}) == {"type": "object", "properties": {}}
    assert tool_schema({"type": "object", "properties": {"x": {"type": 12}}}) == {"type": "object", "properties": {}}
