"""The workspace tools over HTTP: /v1/workspaces, /v1/tools, /v1/tools/{name}, with the gateway's API keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from django.contrib.auth.models import User
from django.test import AsyncClient

from gateway.services import apikey_create
from workspace.models import Policy, Workspace, WorkspaceGrant

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def setup(tmp_path: Path) -> dict[str, Any]:
    alice = User.objects.create_user(username="alice", password="x" * 12)
    bob = User.objects.create_user(username="bob", password="x" * 12)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "hello.txt").write_text("hello from a\n")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "hello.txt").write_text("hello from b\n")
    no_fs = Policy.objects.create(name="no-fs", denied_tools=["fs_*"])
    a = Workspace.objects.create(name="a", root_path=str(tmp_path / "a"))
    b = Workspace.objects.create(name="b", root_path=str(tmp_path / "b"), policy=no_fs)
    WorkspaceGrant.objects.create(workspace=a, user=alice, is_default=True)
    WorkspaceGrant.objects.create(workspace=b, user=alice)
    return {"alice": apikey_create(user=alice).secret, "bob": apikey_create(user=bob).secret}


def _headers(key: str, workspace: str = "") -> dict[str, str]:
    headers = {"x-api-key": key}
    if workspace:
        headers["x-lynkr-workspace"] = workspace
    return headers


async def test_list_workspaces_and_tools(setup: dict[str, Any]) -> None:
    client = AsyncClient()
    listed = await client.get("/v1/workspaces", headers=_headers(setup["alice"]))
    assert listed.status_code == 200
    assert [w["name"] for w in orjson.loads(listed.content)["data"]] == ["a", "b"]
    tools = orjson.loads((await client.get("/v1/tools", headers=_headers(setup["alice"]))).content)
    names = {t["name"] for t in tools["data"]}
    assert tools["workspace"] == "a" and "fs_read" in names and "workspace_symbol_search" in names
    assert all(set(t) == {"name", "description", "input_schema"} for t in tools["data"])
    in_b = orjson.loads((await client.get("/v1/tools", headers=_headers(setup["alice"], "b"))).content)
    assert "fs_read" not in {t["name"] for t in in_b["data"]}


async def test_call_a_tool_in_the_default_and_a_named_workspace(setup: dict[str, Any]) -> None:
    client = AsyncClient()
    body = orjson.dumps({"arguments": {"path": "hello.txt"}})
    done = await client.post(
        "/v1/tools/fs_read", body, content_type="application/json", headers=_headers(setup["alice"])
    )
    assert done.status_code == 200, done.content
    data = orjson.loads(done.content)
    assert data["is_error"] is False and data["workspace"] == "a"
    assert "hello from a" in data["content"]["content"]
    denied = await client.post(
        "/v1/tools/fs_read", body, content_type="application/json", headers=_headers(setup["alice"], "b")
    )
    assert denied.status_code == 403
    assert orjson.loads(denied.content)["error"]["type"] == "permission_error"


async def test_tool_errors_unknown_tools_and_bad_bodies(setup: dict[str, Any]) -> None:
    client = AsyncClient()
    headers = _headers(setup["alice"])
    failed = await client.post(
        "/v1/tools/fs_read",
        orjson.dumps({"arguments": {"path": "../b/hello.txt"}}),
        content_type="application/json",
        headers=headers,
    )
    assert failed.status_code == 200
    assert orjson.loads(failed.content)["is_error"] is True and "'..'" in orjson.loads(failed.content)["error"]
    unknown = await client.post("/v1/tools/rm_rf", b"{}", content_type="application/json", headers=headers)
    assert unknown.status_code == 404 and orjson.loads(unknown.content)["error"]["type"] == "not_found_error"
    bad = await client.post("/v1/tools/fs_read", b"[1]", content_type="application/json", headers=headers)
    assert bad.status_code == 400
    bad_args = await client.post(
        "/v1/tools/fs_read", b'{"arguments": 3}', content_type="application/json", headers=headers
    )
    assert bad_args.status_code == 400


async def test_other_users_and_missing_keys_get_nothing(setup: dict[str, Any]) -> None:
    client = AsyncClient()
    assert (await client.get("/v1/tools")).status_code == 401
    bob_tools = await client.get("/v1/tools", headers=_headers(setup["bob"], "a"))
    assert bob_tools.status_code == 403
    assert "does not exist or you have no access" in orjson.loads(bob_tools.content)["error"]["message"]
    bob_call = await client.post(
        "/v1/tools/fs_read",
        orjson.dumps({"arguments": {"path": "hello.txt"}}),
        content_type="application/json",
        headers=_headers(setup["bob"]),
    )
    assert bob_call.status_code == 403
    listed = await client.get("/v1/workspaces", headers=_headers(setup["bob"]))
    assert orjson.loads(listed.content)["data"] == []
