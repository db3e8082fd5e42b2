"""/mcp in-process: the whole ASGI app (lynkr_site.asgi) driven by the official MCP SDK client over httpx2's ASGI
transport — the same code path Daphne runs (tests/e2e/test_claude_code_mcp.py runs it under a real server)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from django.contrib.auth.models import User
from mcp.client.client import Client
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from gateway import lifecycle
from gateway.services import apikey_create
from mcp_app.asgi import McpMount
from tests.workspace.repos import make_repo
from workspace.models import Policy, Workspace, WorkspaceGrant

pytestmark = pytest.mark.django_db(transaction=True)

BASE = "http://127.0.0.1:8000"
ACCEPT = "application/json, text/event-stream"
FILES = {
    "pkg/__init__.py": "",
    "pkg/mod.py": "def helper():\n    return 1\n",
    "README.md": "# demo\n",
}


@pytest.fixture
def world(tmp_path: Path) -> dict[str, str]:
    """alice: workspace "repo" (her default) and "locked" (git tools denied); "other" exists without her grant.
    bob: no workspace at all."""
    root = make_repo(tmp_path / "repo", FILES)
    alice = User.objects.create_user(username="alice", password="x" * 12)
    bob = User.objects.create_user(username="bob", password="x" * 12)
    no_git = Policy.objects.create(name="no-git", denied_tools=["workspace_git_*"])
    repo = Workspace.objects.create(name="repo", root_path=str(root))
    locked = Workspace.objects.create(name="locked", root_path=str(root), policy=no_git)
    Workspace.objects.create(name="other", root_path=str(root))
    WorkspaceGrant.objects.create(workspace=repo, user=alice, is_default=True)
    WorkspaceGrant.objects.create(workspace=locked, user=alice)
    return {"alice": apikey_create(user=alice).secret, "bob": apikey_create(user=bob).secret}


@pytest.fixture
async def app() -> AsyncIterator[Any]:
    from lynkr_site.asgi import application, mcp_application

    yield application
    await mcp_application.get().host.aclose()  # the SDK manager's task belongs to this test's event loop


def _http(app: Any, headers: dict[str, str] | None = None) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=BASE, headers=headers or {})


@asynccontextmanager
async def mcp_session(app: Any, key: str, workspace: str = "") -> AsyncIterator[ClientSession]:
    headers = {"x-api-key": key, **({"x-lynkr-workspace": workspace} if workspace else {})}
    async with (
        _http(app, headers) as http,
        streamable_http_client(f"{BASE}/mcp", http_client=http) as streams,
        ClientSession(*streams) as session,
    ):
        await session.initialize()
        yield session


def _payload(result: Any) -> dict[str, Any]:
    assert result.is_error is False, result
    parsed: dict[str, Any] = json.loads(result.content[0].text)
    return parsed


def _rpc(method: str, params: dict[str, Any], request_id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


INITIALIZE = _rpc(
    "initialize", {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
)


async def test_initialize_and_list_the_callers_workspace_tools(app: Any, world: dict[str, str]) -> None:
    async with (
        _http(app, {"x-api-key": world["alice"]}) as http,
        streamable_http_client(f"{BASE}/mcp", http_client=http) as streams,
        ClientSession(*streams) as session,
    ):
        init = await session.initialize()
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    assert init.server_info.name == "lynkr" and init.capabilities.tools is not None
    assert "workspace_index_rebuild" in (init.instructions or "")
    assert {"fs_read", "workspace_symbol_search", "workspace_git_status", "workspace_git_commit"} <= set(tools)
    read = tools["fs_read"]
    assert read.input_schema["required"] == ["path"] and "Read a text file" in (read.description or "")
    assert read.annotations is not None
    assert (read.annotations.read_only_hint, read.annotations.destructive_hint) == (True, False)
    commit = tools["workspace_git_commit"].annotations
    assert commit is not None and (commit.read_only_hint, commit.destructive_hint) == (False, True)


async def test_policy_filters_the_list_and_refuses_the_call(app: Any, world: dict[str, str]) -> None:
    async with mcp_session(app, world["alice"], "locked") as session:
        names = {tool.name for tool in (await session.list_tools()).tools}
        refused = await session.call_tool("workspace_git_status", {})
    assert "fs_read" in names and "workspace_symbol_search" in names
    assert not [name for name in names if name.startswith("workspace_git_")]
    assert refused.is_error is True
    assert "not allowed by policy 'no-git'" in refused.content[0].text


async def _tool_calls_total(http: httpx2.AsyncClient, tool: str, outcome: str) -> float:
    text = (await http.get("/metrics/prometheus")).text
    found = re.search(rf'^lynkr_tool_calls_total\{{outcome="{outcome}",tool="{tool}"\}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


async def test_read_index_search_and_count(app: Any, world: dict[str, str]) -> None:
    async with _http(app) as metrics:
        before = await _tool_calls_total(metrics, "workspace_symbol_search", "ok")
        async with mcp_session(app, world["alice"]) as session:
            read = _payload(await session.call_tool("fs_read", {"path": "pkg/mod.py"}))
            rebuilt = _payload(await session.call_tool("workspace_index_rebuild", {"wait": True}))
            found = _payload(await session.call_tool("workspace_symbol_search", {"query": "helper"}))
        after = await _tool_calls_total(metrics, "workspace_symbol_search", "ok")
    assert read["content"] == FILES["pkg/mod.py"] and read["total_lines"] == 2
    assert rebuilt["status"] == "done" and rebuilt["symbols"] >= 1
    assert [(s["name"], s["path"], s["line"], s["kind"]) for s in found["symbols"]] == [
        ("helper", "pkg/mod.py", 1, "function")
    ]
    assert after == before + 1


async def test_tool_failures_are_error_results(app: Any, world: dict[str, str]) -> None:
    async with mcp_session(app, world["alice"]) as session:
        outside = await session.call_tool("fs_read", {"path": "../etc/passwd"})
        missing = await session.call_tool("fs_read", {"path": "nope.txt"})
        bad_args = await session.call_tool("fs_read", {})
        unknown = await session.call_tool("no_such_tool", {})
    assert outside.is_error is True and "'..' is not allowed" in outside.content[0].text
    assert missing.is_error is True and "nope.txt" in missing.content[0].text
    assert bad_args.is_error is True and "invalid arguments for fs_read" in bad_args.content[0].text
    assert unknown.is_error is True and unknown.content[0].text == "unknown tool 'no_such_tool'"


@pytest.fixture
def echo_for_alice(world: dict[str, str], make_server: Callable[..., Any]) -> str:
    """The fixture echo server (stdio) for alice only; carol works in alice's workspace. Returns carol's key."""
    carol = User.objects.create_user(username="carol", password="x" * 12)
    WorkspaceGrant.objects.create(workspace=Workspace.objects.get(name="repo"), user=carol)
    make_server("echo").allowed_users.add(User.objects.get(username="alice"))
    return apikey_create(user=carol).secret


async def test_an_mcp_servers_tools_only_for_its_users(app: Any, world: dict[str, str], echo_for_alice: str) -> None:
    """The tools of an admin-added MCP server reach Claude Code through /mcp for the users it lists; another user
    of the same workspace neither sees nor can call them."""
    carol_key = echo_for_alice
    async with mcp_session(app, world["alice"]) as session:
        alice_tools = {tool.name for tool in (await session.list_tools()).tools}
        echoed = await session.call_tool("mcp_echo_echo", {"text": "hello over mcp"})
    async with mcp_session(app, carol_key) as session:
        carol_tools = {tool.name for tool in (await session.list_tools()).tools}
        refused = await session.call_tool("mcp_echo_echo", {"text": "hello"})
    assert {"mcp_echo_echo", "mcp_echo_add"} <= alice_tools
    assert echoed.is_error is False and "hello over mcp" in echoed.content[0].text
    assert "fs_read" in carol_tools and not [name for name in carol_tools if name.startswith("mcp_echo_")]
    assert refused.is_error is True and refused.content[0].text == "unknown tool 'mcp_echo_echo'"


async def test_the_2026_protocol_without_handshake(app: Any, world: dict[str, str]) -> None:
    """The SDK client's "auto" mode discovers the server at 2026-07-28 (as Claude Code 2.1.332 does)."""
    async with (
        _http(app, {"x-api-key": world["alice"]}) as http,
        Client(streamable_http_client(f"{BASE}/mcp", http_client=http), mode="auto") as client,
    ):
        names = {tool.name for tool in (await client.list_tools()).tools}
        read = await client.call_tool("fs_read", {"path": "README.md"})
    assert "fs_read" in names
    assert _payload(read)["content"] == "# demo\n"


async def test_stateless_any_request_stands_alone(app: Any, world: dict[str, str]) -> None:
    """No session: a tools/call with no initialize before it is answered (any process may get any request)."""
    headers = {"x-api-key": world["alice"], "accept": ACCEPT, "mcp-protocol-version": "2025-11-25"}
    async with _http(app, headers) as http:
        call = _rpc("tools/call", {"name": "fs_read", "arguments": {"path": "README.md"}})
        response = await http.post("/mcp", json=call)
        opened = await http.post("/mcp", json=INITIALIZE)
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    assert json.loads(response.json()["result"]["content"][0]["text"])["content"] == "# demo\n"
    assert response.headers["request-id"].startswith("req_")
    assert opened.status_code == 200 and "mcp-session-id" not in opened.headers


async def test_authentication_and_workspace_refusals(app: Any, world: dict[str, str]) -> None:
    async with _http(app, {"accept": ACCEPT}) as http:
        anonymous = await http.post("/mcp", json=INITIALIZE)
        wrong = await http.post("/mcp", json=INITIALIZE, headers={"x-api-key": "sk-lynkr-not-a-key"})
        bearer = await http.post("/mcp/", json=INITIALIZE, headers={"authorization": f"Bearer {world['alice']}"})
        ungranted = await http.post(
            "/mcp", json=INITIALIZE, headers={"x-api-key": world["alice"], "x-lynkr-workspace": "other"}
        )
        nowhere = await http.post("/mcp", json=INITIALIZE, headers={"x-api-key": world["bob"]})
    for refused in (anonymous, wrong):
        assert refused.status_code == 401
        assert refused.json()["error"]["type"] == "authentication_error"
        assert refused.headers["www-authenticate"].startswith("Bearer")
    assert "missing API key" in anonymous.json()["error"]["message"]
    assert bearer.status_code == 200 and bearer.json()["result"]["serverInfo"]["name"] == "lynkr"
    assert ungranted.status_code == 403
    assert ungranted.json()["error"] == {
        "type": "permission_error",
        "message": "workspace 'other' does not exist or you have no access to it",
    }
    assert nowhere.status_code == 403 and "no workspace is available" in nowhere.json()["error"]["message"]


async def test_only_post_is_served(app: Any, world: dict[str, str]) -> None:
    async with _http(app, {"x-api-key": world["alice"], "accept": "text/event-stream"}) as http:
        stream = await http.get("/mcp")
        delete = await http.delete("/mcp")
    for response in (stream, delete):
        assert response.status_code == 405 and response.headers["allow"] == "POST"
        assert response.json()["error"]["type"] == "invalid_request_error"


async def test_hosts_and_origins_follow_allowed_hosts(app: Any, world: dict[str, str], settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["gateway.example.com", ".corp.example"]
    headers = {"x-api-key": world["alice"], "accept": ACCEPT}
    async with _http(app, headers) as http:
        rebound = await http.post("/mcp", json=INITIALIZE, headers={"host": "attacker.example:8000"})
        allowed = await http.post("/mcp", json=INITIALIZE, headers={"host": "gateway.example.com"})
        subdomain = await http.post("/mcp", json=INITIALIZE, headers={"host": "lynkr.corp.example:443"})
        foreign = await http.post(
            "/mcp", json=INITIALIZE, headers={"host": "gateway.example.com", "origin": "https://evil.example"}
        )
    assert rebound.status_code == 421 and "Host" in rebound.json()["error"]["message"]
    assert allowed.status_code == 200 and subdomain.status_code == 200
    assert foreign.status_code == 403 and "Origin" in foreign.json()["error"]["message"]


@pytest.fixture
def draining() -> Iterator[None]:
    lifecycle._State.shutting_down = True
    yield
    lifecycle._State.shutting_down = False


async def test_refused_while_shutting_down(app: Any, world: dict[str, str], draining: None) -> None:
    async with _http(app, {"x-api-key": world["alice"], "accept": ACCEPT}) as http:
        response = await http.post("/mcp", json=INITIALIZE)
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert response.json()["error"]["type"] == "overloaded_error"


async def test_the_manager_restarts_after_close(app: Any, world: dict[str, str]) -> None:
    from lynkr_site.asgi import mcp_application

    async with mcp_session(app, world["alice"]) as session:
        assert (await session.call_tool("fs_read", {"path": "README.md"})).is_error is False
    await mcp_application.get().host.aclose()
    async with mcp_session(app, world["alice"]) as session:
        assert (await session.call_tool("fs_read", {"path": "README.md"})).is_error is False


async def test_mount_routes_the_prefixed_path_only(settings: Any) -> None:
    settings.LYNKR_BASE_PATH = "gw/"
    seen: list[str] = []

    def recorder(name: str) -> Any:
        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            seen.append(f"{name} {scope['path']}")

        return app

    mount = McpMount(recorder("mcp"), recorder("django"))
    for path in ("/gw/mcp", "/gw/mcp/", "/mcp", "/gw/mcpx", "/gw/v1/messages"):
        await mount({"type": "http", "path": path}, None, None)
    await mount({"type": "websocket", "path": "/gw/mcp"}, None, None)
    assert seen == [
        "mcp /gw/mcp",
        "mcp /gw/mcp/",
        "django /mcp",
        "django /gw/mcpx",
        "django /gw/v1/messages",
        "django /gw/mcp",
    ]
