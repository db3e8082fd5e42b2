"""The connection manager against the real fixture server (official SDK) over stdio and Streamable HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mcp_app import client as client_module
from mcp_app.client import McpConnectionLost, McpTimeout, McpUnavailable, mcp_manager, mcp_manager_close
from mcp_app.selectors import mcp_server_config
from tests.mcp_app.conftest import ECHO_SERVER

pytestmark = pytest.mark.django_db


def _pid(config: Any) -> int:
    result = mcp_manager().call_tool(config, tool="pid", arguments={}, workspace_root=None)
    return int(result.structured_content["result"])


def test_lists_and_calls_the_fixture_server(make_server: Callable[..., Any]) -> None:
    config = mcp_server_config(make_server())
    manager = mcp_manager()
    tools = manager.list_tools(config, workspace_root=None)
    by_name = {tool.name: tool for tool in tools}
    assert {"echo", "add", "sleep", "crash", "write_file", "env", "pid"} <= set(by_name)
    assert by_name["add"].input_schema["required"] == ["a", "b"]
    result = manager.call_tool(config, tool="add", arguments={"a": 2, "b": 40}, workspace_root=None)
    assert not result.is_error
    assert result.structured_content == {"result": 42}
    echoed = manager.call_tool(config, tool="echo", arguments={"text": "héllo"}, workspace_root=None)
    assert echoed.content[0].text == "héllo"
    # The listing is cached: the same answer, without asking the server again.
    assert manager.list_tools(config, workspace_root=None) is tools


def test_a_tool_error_is_an_is_error_result(make_server: Callable[..., Any]) -> None:
    config = mcp_server_config(make_server())
    result = mcp_manager().call_tool(config, tool="fail", arguments={"message": "no such file"}, workspace_root=None)
    assert result.is_error
    assert "no such file" in result.content[0].text


def test_a_hung_call_times_out_with_a_clear_error(make_server: Callable[..., Any]) -> None:
    config = mcp_server_config(make_server(name="slow", timeout_seconds=1))
    with pytest.raises(McpTimeout, match=r"^MCP server slow did not answer tools/call within 1 s$"):
        mcp_manager().call_tool(config, tool="sleep", arguments={"seconds": 1.5}, workspace_root=None)
    # The server is still usable afterwards.
    assert mcp_manager().call_tool(
        config, tool="add", arguments={"a": 1, "b": 1}, workspace_root=None
    ).structured_content == {"result": 2}


def test_a_crashed_server_is_restarted_on_the_next_call(make_server: Callable[..., Any]) -> None:
    config = mcp_server_config(make_server(name="crashy"))
    mcp_manager().restart(config.id)
    first = _pid(config)
    with pytest.raises(McpConnectionLost, match="crashy closed the connection during tools/call"):
        mcp_manager().call_tool(config, tool="crash", arguments={}, workspace_root=None)
    second = _pid(config)
    assert second != first
    assert (
        mcp_manager().call_tool(config, tool="echo", arguments={"text": "back"}, workspace_root=None).content[0].text
        == "back"
    )


def test_restarts_are_limited_per_minute(make_server: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "MAX_RESTARTS_PER_MINUTE", 1)
    config = mcp_server_config(make_server(name="flaky"))
    manager = mcp_manager()
    manager.restart(config.id)
    for _ in range(2):
        with pytest.raises(McpConnectionLost):
            manager.call_tool(config, tool="crash", arguments={}, workspace_root=None)
    with pytest.raises(McpUnavailable, match=r"flaky stopped 1 times in the last minute; it is not started again"):
        _pid(config)
    manager.restart(config.id)  # what the admin action does
    assert _pid(config) > 0


def test_a_server_that_cannot_start_says_why(make_server: Callable[..., Any]) -> None:
    missing = mcp_server_config(make_server(name="missing", command="/nonexistent/mcp-server", args=[]))
    with pytest.raises(McpUnavailable, match=r"MCP server missing could not be started: No such file or directory"):
        mcp_manager().list_tools(missing, workspace_root=None)
    script = "import sys; sys.stderr.write('fatal: GITHUB_TOKEN is not set\\n'); sys.exit(3)"
    broken = mcp_server_config(make_server(name="broken", args=["-c", script]))
    with pytest.raises(McpUnavailable, match="MCP server broken could not be started") as caught:
        mcp_manager().list_tools(broken, workspace_root=None)
    assert "fatal: GITHUB_TOKEN is not set" in caught.value.detail
    assert "GITHUB_TOKEN is not set" not in str(caught.value)  # stderr is for admins, not the model


def test_a_changed_configuration_replaces_the_session(make_server: Callable[..., Any]) -> None:
    row = make_server(name="configured", env={"GREETING": "one"})
    config = mcp_server_config(row)
    manager = mcp_manager()
    assert (
        manager.call_tool(config, tool="env", arguments={"name": "GREETING"}, workspace_root=None).content[0].text
        == "one"
    )
    first = _pid(config)
    row.env = {"GREETING": "two"}
    row.save()
    changed = mcp_server_config(row)
    assert (
        manager.call_tool(changed, tool="env", arguments={"name": "GREETING"}, workspace_root=None).content[0].text
        == "two"
    )
    assert _pid(changed) != first
    assert [alive for server_id, _, alive in manager.sessions() if server_id == row.pk] == [True]


def test_closing_the_manager_ends_the_server_processes(make_server: Callable[..., Any]) -> None:
    config = mcp_server_config(make_server(name="closing"))
    pid = _pid(config)
    assert Path(f"/proc/{pid}").exists()
    mcp_manager_close()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve_http(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, str(ECHO_SERVER), "--http", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=0.5)
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("the HTTP fixture server did not start")


@pytest.fixture
def http_port() -> Iterator[tuple[int, list[subprocess.Popen[bytes]]]]:
    port = _free_port()
    processes = [_serve_http(port)]
    yield port, processes
    for process in processes:
        process.kill()
        process.wait()


def test_streamable_http_server_and_reconnect_after_it_restarts(
    make_server: Callable[..., Any], http_port: tuple[int, list[subprocess.Popen[bytes]]]
) -> None:
    port, processes = http_port
    row = make_server(name="web", transport="streamable_http", command="", args=[], url=f"http://127.0.0.1:{port}/mcp")
    config = mcp_server_config(row)
    manager = mcp_manager()
    assert "echo" in {tool.name for tool in manager.list_tools(config, workspace_root=None)}
    first = manager.call_tool(config, tool="pid", arguments={}, workspace_root=None).structured_content["result"]
    assert first == processes[0].pid
    processes[0].kill()
    processes[0].wait()
    processes.append(_serve_http(port))
    # The new server does not know our session: the manager reconnects and the call goes through.
    second = manager.call_tool(config, tool="pid", arguments={}, workspace_root=None).structured_content["result"]
    assert second == processes[1].pid
    assert os.getpid() not in (first, second)


def test_disabling_or_deleting_a_server_ends_its_sessions(
    make_server: Callable[..., Any], django_capture_on_commit_callbacks: Any
) -> None:
    row = make_server(name="short-lived")
    config = mcp_server_config(row)
    manager = mcp_manager()
    manager.restart(config.id)
    assert _pid(config) > 0
    with django_capture_on_commit_callbacks(execute=True):
        row.enabled = False
        row.save()
    assert not any(server_id == row.pk for server_id, _, _ in manager.sessions())
    row.enabled = True
    row.save()
    assert _pid(mcp_server_config(row)) > 0
    with django_capture_on_commit_callbacks(execute=True):
        row.delete()
    assert not any(server_id == config.id for server_id, _, _ in manager.sessions())


def test_idle_sessions_are_closed(make_server: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    mcp_manager_close()
    monkeypatch.setattr(client_module, "REAP_INTERVAL_SECONDS", 0.1)
    monkeypatch.setattr(client_module, "IDLE_SECONDS", 0.2)
    config = mcp_server_config(make_server(name="idle"))
    pid = _pid(config)
    deadline = time.monotonic() + 15
    while mcp_manager().sessions() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mcp_manager().sessions() == []
    assert _pid(config) != pid  # the next call starts it again, and that is not a crash restart
    mcp_manager_close()
