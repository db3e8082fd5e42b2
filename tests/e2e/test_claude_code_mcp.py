"""The real Claude Code CLI uses the gateway's workspace tools over MCP: ``claude mcp add --transport http lynkr
<gateway>/mcp --header "x-api-key: ..."``, then ``claude -p`` with the model behind the same gateway.

The scripted model (a mock upstream) asks for ``mcp__lynkr__workspace_symbol_search`` (Claude Code names MCP tools
``mcp__<server>__<tool>``) and, once the tool_result is in the request, answers with what it found. CLI 2.1.332
defers MCP tools behind ToolSearch (claude-code-wire.md §8): the model first loads the tool's schema with
``ToolSearch {"query": "select:<name>"}``, as a real model does. Also here: the official SDK client against the real
server (Daphne, no ASGI lifespan), so the endpoint is proven without npm too.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp.client.client import Client
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.claude_cli import CLAUDE_VERSIONS, _base_env, ensure_claude, run_claude
from tests.e2e.server import LynkrServer
from tests.mocks.anthropic_upstream import (
    MockAnthropicUpstream,
    RecordedRequest,
    ScriptedResponse,
    message_json,
    stream_events,
)
from tests.workspace.repos import make_repo

pytestmark = pytest.mark.e2e

TOOL = "mcp__lynkr__workspace_symbol_search"
SEARCH = "ToolSearch"
FILES = {
    "pkg/__init__.py": "",
    "pkg/mod.py": "def helper():\n    return 1\n",
    "main.py": "from pkg.mod import helper\n\nprint(helper())\n",
}


def _tool_results(body: dict[str, Any]) -> dict[str, str]:
    """tool_use_id -> the tool_result's text, over every user message."""
    found: dict[str, str] = {}
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        for block in content if isinstance(content, list) else []:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                inner = block.get("content")
                if isinstance(inner, list):
                    inner = "\n".join(str(b.get("text", "")) for b in inner if isinstance(b, dict))
                found[str(block.get("tool_use_id"))] = str(inner)
    return found


def _tool_uses(body: dict[str, Any]) -> dict[str, str]:
    """tool_use id -> tool name, over every assistant message."""
    found: dict[str, str] = {}
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        for block in content if isinstance(content, list) else []:
            if isinstance(block, dict) and block.get("type") == "tool_use":
                found[str(block.get("id"))] = str(block.get("name"))
    return found


def _referenced(body: dict[str, Any], name: str) -> bool:
    """A ``tool_reference`` to ``name`` came back in a tool_result: ToolSearch loaded the deferred tool
    (https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/tool-search-tool)."""
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        for block in content if isinstance(content, list) else []:
            inner = block.get("content") if isinstance(block, dict) and block.get("type") == "tool_result" else None
            for item in inner if isinstance(inner, list) else []:
                if isinstance(item, dict) and item.get("type") == "tool_reference" and item.get("tool_name") == name:
                    return True
    return False


def script(body: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """The scripted model: search symbols through the gateway's MCP tool, then report what came back."""
    uses, results = _tool_uses(body), _tool_results(body)
    answered = {uses.get(use_id): text for use_id, text in results.items()}
    if TOOL in answered:
        return [{"type": "text", "text": f"FOUND: {answered[TOOL]}"}], "end_turn"
    tools = {t.get("name"): t for t in body.get("tools") or [] if isinstance(t, dict)}
    if TOOL in tools and (not tools[TOOL].get("defer_loading") or _referenced(body, TOOL)):
        return [{"type": "tool_use", "id": "toolu_mcp_search", "name": TOOL, "input": {"query": "helper"}}], "tool_use"
    if SEARCH in tools and SEARCH not in answered:
        load = {"query": f"select:{TOOL}", "max_results": 5}
        return [{"type": "tool_use", "id": "toolu_tool_search", "name": SEARCH, "input": load}], "tool_use"
    return [{"type": "text", "text": f"MISSING TOOL {TOOL}"}], "end_turn"


class ScriptedModel(MockAnthropicUpstream):
    """The mock upstream answering every /v1/messages call with ``script`` (decided from the request itself)."""

    def __init__(self) -> None:
        super().__init__()
        self._current = threading.local()  # the handler thread's request: recorded first, answered next

    def _record(self, request: RecordedRequest) -> None:
        self._current.request = request
        super()._record(request)

    def _next_response(self) -> ScriptedResponse | None:
        queued = super()._next_response()
        request: RecordedRequest | None = getattr(self._current, "request", None)
        if queued is not None or request is None or not isinstance(request.body, dict):
            return queued
        body = request.body
        blocks, stop_reason = script(body)
        model = str(body.get("model", "claude-mock"))
        if body.get("stream") is True:
            return ScriptedResponse(events=stream_events(model, blocks, stop_reason, 100))
        return ScriptedResponse(body=message_json(model, blocks, stop_reason, 100))


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedModel]:
    with ScriptedModel() as mock:
        yield mock
        assert mock.errors == [], mock.errors


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model: ScriptedModel) -> Iterator[LynkrServer]:
    """A gateway whose model is the scripted mock, with WORKSPACE_ROOT's "default" workspace, indexed."""
    repo = make_repo(tmp_path_factory.mktemp("repo") / "repo", FILES)
    lynkr = LynkrServer(
        data_dir=tmp_path_factory.mktemp("lynkr-mcp"),
        env_extra={
            "MODEL_PROVIDER": "azure-anthropic",
            "AZURE_ANTHROPIC_ENDPOINT": f"{model.url}/anthropic/v1/messages",
            "AZURE_ANTHROPIC_API_KEY": "upstream-secret",
            "API_RETRY_MAX_RETRIES": "0",
            "WORKSPACE_ROOT": str(repo),  # bootstrapped as workspace "default", open to every user
            "LYNKR_ACCESS_LOG": "-",  # Daphne's access lines: every /mcp request's status, checked below
        },
    ).start()
    try:
        assert lynkr.api_key.startswith("sk-lynkr-"), lynkr.log()
        indexed = httpx.post(
            f"{lynkr.url}/v1/tools/workspace_index_rebuild",
            json={"arguments": {"wait": True}},
            headers={"x-api-key": lynkr.api_key},
            timeout=60,
        )
        assert indexed.status_code == 200 and indexed.json()["content"]["symbols"] >= 1, indexed.text
        yield lynkr
    finally:
        lynkr.stop()
    log = lynkr.log()
    assert "Traceback" not in log, log[-5000:]
    assert "Task was destroyed" not in log, log[-5000:]  # the MCP manager's task ends quietly at shutdown
    assert lynkr.api_key not in log.split("serving on", 1)[1]  # the CLI sends the key; no log line shows it


def _tool_calls_metric(lynkr: LynkrServer, outcome: str) -> float:
    text = httpx.get(f"{lynkr.url}/metrics/prometheus", timeout=10).text
    pattern = rf'^lynkr_tool_calls_total\{{outcome="{outcome}",tool="workspace_symbol_search"\}} (\S+)$'
    found = re.search(pattern, text, re.M)
    return float(found.group(1)) if found else 0.0


async def test_sdk_client_against_the_real_server(server: LynkrServer) -> None:
    """Both MCP eras of the official SDK client, through Daphne: the handshake (initialize) and 2026-07-28."""
    before = _tool_calls_metric(server, "ok")
    headers = {"x-api-key": server.api_key}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        async with (
            streamable_http_client(f"{server.url}/mcp", http_client=http) as streams,
            ClientSession(*streams) as session,
        ):
            init = await session.initialize()
            assert init.server_info.name == "lynkr"
            names = {tool.name for tool in (await session.list_tools()).tools}
            assert {"fs_read", "workspace_symbol_search", "workspace_index_rebuild"} <= names
            found = await session.call_tool("workspace_symbol_search", {"query": "helper"})
        async with Client(streamable_http_client(f"{server.url}/mcp", http_client=http), mode="auto") as client:
            read_back = await client.call_tool("fs_read", {"path": "pkg/mod.py"})
    assert found.is_error is False
    symbols = json.loads(found.content[0].text)["symbols"]
    assert [(s["name"], s["path"]) for s in symbols] == [("helper", "pkg/mod.py")]
    assert read_back.is_error is False and "def helper" in json.loads(read_back.content[0].text)["content"]
    assert _tool_calls_metric(server, "ok") == before + 1
    refused = httpx.post(f"{server.url}/mcp", json={}, headers={"x-api-key": "sk-lynkr-wrong"}, timeout=10)
    assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"


def _mcp_add(binary: Path, *, home: Path, cwd: Path, url: str, api_key: str) -> str:
    """``claude mcp add`` (local scope: this project of this HOME), exactly as the README tells users."""
    done = subprocess.run(
        [str(binary), "mcp", "add", "--transport", "http", "lynkr", url, "--header", f"x-api-key: {api_key}"],
        cwd=cwd,
        env=_base_env(home) | {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize("version", CLAUDE_VERSIONS)
def test_claude_code_calls_a_workspace_tool_over_mcp(
    version: str, tmp_path: Path, server: LynkrServer, model: ScriptedModel
) -> None:
    if shutil.which("npm") is None:
        pytest.skip("CLAUDE CODE E2E SKIPPED: npm is not installed, so @anthropic-ai/claude-code cannot be installed")
    binary = ensure_claude(version)
    assert binary is not None
    cwd = tmp_path / "project"
    cwd.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    (home / ".claude.json").write_text(json.dumps({"hasCompletedOnboarding": True}))
    added = _mcp_add(binary, home=home, cwd=cwd, url=f"{server.url}/mcp", api_key=server.api_key)
    assert "lynkr" in added and server.api_key not in added  # the CLI redacts the header it stored
    log_start = len(server.log())
    calls_before = len(model.messages_requests)
    result = run_claude(
        binary,
        base_url=server.url,
        api_key=server.api_key,
        cwd=cwd,
        prompt="Where is the function helper defined? Use the lynkr symbol search.",
        extra_args=("--allowedTools", TOOL),
        env_extra={"HOME": str(home)},  # the HOME `claude mcp add` wrote its config to
    )
    calls = [c.body for c in model.messages_requests[calls_before:] if isinstance(c.body, dict)]
    log = server.log()[log_start:]
    detail = f"stdout={result.stdout[-3000:]}\nstderr={result.stderr[-2000:]}\nserver log:\n{log[-4000:]}"
    assert result.returncode == 0 and not result.is_error, detail
    assert result.permission_denials == [], detail
    # The CLI offered the gateway's tool to the model: in the tools array (2.1.197), or deferred behind ToolSearch
    # and named in the conversation, then loaded into the tools array (2.1.332).
    offered = [{t.get("name") for t in body.get("tools") or []} for body in calls]
    assert TOOL in json.dumps(calls[0]), "the first turn does not mention the MCP tool at all"
    if TOOL in offered[0]:
        assert len(calls) == 2, offered  # tool_use of the MCP tool; its tool_result -> the answer
    else:
        assert SEARCH in offered[0] and TOOL in offered[1], offered  # deferred; loaded by ToolSearch
        assert len(calls) == 3, offered
    # The model's last answer quotes the tool_result the CLI got from the gateway: the symbol search's hit.
    assert result.text.startswith("FOUND: "), detail
    found = json.loads(result.text.removeprefix("FOUND: "))
    assert [(s["name"], s["path"], s["line"]) for s in found["symbols"]] == [("helper", "pkg/mod.py", 1)], detail
    assert "pkg/mod.py" in result.text
    # The gateway ran it: one logged call of the workspace tool, for this key's user, in workspace "default".
    logged = re.findall(r"tool call tool=workspace_symbol_search workspace=default .*outcome=ok", log)
    assert len(logged) == 1, detail
    # Every MCP POST was answered (200, or 202 for a notification); only the SSE GET is refused (405, stateless).
    statuses = re.findall(r'"(GET|POST|DELETE) /mcp" (\d{3})', log)
    assert statuses and {s for m, s in statuses if m == "POST"} <= {"200", "202"}, statuses
    assert {s for m, s in statuses if m != "POST"} <= {"405"}, statuses
