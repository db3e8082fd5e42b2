"""Shared fixtures and helpers of the server-side tool loop tests (no tests here).

A real git repository as the workspace, real Workspace / Policy / WorkspaceGrant rows, the real /v1/messages
operation (Django's async client) and a scripted loopback Anthropic upstream whose turns the tests enqueue.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2 as httpx  # the anthropic SDK 2.x runs on httpx2 and refuses httpx objects
import orjson
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import AsyncClient

from gateway.accounting import usage_buffer
from gateway.models import PriceEntry, Turn, UsageRecord
from gateway.services import apikey_create
from providers.models import Provider
from tests.mocks.anthropic_upstream import MockAnthropicUpstream, RecordedRequest, ScriptedResponse, stream_events
from tests.workspace.repos import make_repo
from workspace.models import Policy, Workspace, WorkspaceGrant

APP_PY = "def helper():\n    return 42\n\n\ndef main():\n    return helper()\n"
BASH = {
    "name": "Bash",
    "description": "Run a shell command",
    "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
}
ASK = {
    "model": "claude-sonnet-5",
    "max_tokens": 256,
    "tools": [BASH],
    "messages": [{"role": "user", "content": "What does helper return?"}],
}


@pytest.fixture(autouse=True)
def _quiet_metering(settings: Any) -> Iterator[None]:
    """In-process limiters, usage written only by explicit flushes, no seeded prices (as in test_metering)."""
    settings.REDIS_URL = ""
    settings.LYNKR_USAGE_FLUSH_INTERVAL = 3600
    settings.LYNKR_RETRY_INITIAL_DELAY = 0.01
    usage_buffer.clear()
    PriceEntry.objects.all().delete()
    yield
    usage_buffer.clear()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"src/app.py": APP_PY, "README.md": "# Demo\n"})


@pytest.fixture
def user() -> User:
    return User.objects.create_user(username="loop-user", password="x" * 12)


@pytest.fixture
def key(user: User) -> str:
    return apikey_create(user=user).secret


@pytest.fixture
def provider(upstream: MockAnthropicUpstream) -> Provider:
    return Provider.objects.create(
        name="up", kind="anthropic", base_url=upstream.url, api_key="k", model_override="upstream-model"
    )


@pytest.fixture
def make_ws(repo: Path) -> Callable[..., Awaitable[Workspace]]:
    """A workspace on ``repo`` granted (as the default) to ``user``, with a policy built from ``policy``."""
    counter = {"n": 0}

    @sync_to_async
    def make(user: User, *, name: str = "", **policy: Any) -> Workspace:
        counter["n"] += 1
        row = Policy.objects.create(name=f"loop-policy-{counter['n']}", **policy)
        workspace = Workspace.objects.create(name=name or f"loop-ws-{counter['n']}", root_path=str(repo), policy=row)
        WorkspaceGrant.objects.create(workspace=workspace, user=user, is_default=True)
        return workspace

    return make


def turn(content: list[dict[str, Any]], stop_reason: str, *, input_tokens: int, output_tokens: int) -> ScriptedResponse:
    """One scripted model answer (SSE, as the gateway always asks upstreams to stream) with exact usage."""
    events = stream_events("upstream-model", content, stop_reason, input_tokens)
    for name, data in events:
        if name == "message_delta":
            data["usage"]["output_tokens"] = output_tokens
    return ScriptedResponse(events=events)


def tool_use(name: str, tool_input: dict[str, Any], use_id: str = "toolu_1") -> dict[str, Any]:
    return {"type": "tool_use", "id": use_id, "name": name, "input": tool_input}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


async def post(key: str, body: Any, **headers: str) -> Any:
    return await AsyncClient().post(
        "/v1/messages?beta=true",
        orjson.dumps(body),
        content_type="application/json",
        headers={"x-api-key": key, **headers},
    )


async def drain(response: Any) -> bytes:
    return b"".join([chunk async for chunk in response.streaming_content])


def sent(upstream: MockAnthropicUpstream) -> list[dict[str, Any]]:
    """The bodies of the upstream calls, in order."""
    bodies: list[RecordedRequest] = upstream.messages_requests
    return [dict(r.body) for r in bodies if isinstance(r.body, dict)]


def tool_names(body: dict[str, Any]) -> list[str]:
    return [str(t["name"]) for t in body.get("tools") or []]


def tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool_result blocks of the last user message of an upstream call."""
    last = body["messages"][-1]
    assert last["role"] == "user"
    return [b for b in last["content"] if b.get("type") == "tool_result"]


def sdk_stream(raw: bytes) -> tuple[Any, list[Any]]:
    """Parse an SSE body with the official anthropic SDK's stream parser: (final message, events)."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=raw, headers={"content-type": "text/event-stream"})

    http = httpx.Client(transport=httpx.MockTransport(answer))
    client = anthropic.Anthropic(api_key="k", base_url="http://gateway.test", http_client=http, max_retries=0)
    with client.messages.stream(
        model="claude-sonnet-5", max_tokens=8, messages=[{"role": "user", "content": "x"}]
    ) as s:
        events = list(s)
        return s.get_final_message(), events


def frames(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for frame in raw.decode().split("\n\n"):
        if not frame.strip():
            continue
        event, data = frame.split("\n", 1)
        out.append((event.removeprefix("event: "), orjson.loads(data.removeprefix("data: "))))
    return out


@sync_to_async
def request_records() -> list[UsageRecord]:
    return list(UsageRecord.objects.filter(kind="request").order_by("record_id"))


@sync_to_async
def turns() -> list[Turn]:
    return list(Turn.objects.order_by("id"))
