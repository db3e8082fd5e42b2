"""The workspace of a /v1/messages request: header or default, cached per (key, header), refusals as 403."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User

from gateway.errors import PermissionDeniedError
from gateway.keys import key_hash
from gateway.request_workspace import request_workspace, request_workspace_cache_clear
from gateway.selectors import KeyInfo, apikey_get_by_hash
from gateway.services import apikey_create
from workspace.models import Policy, Workspace, WorkspaceGrant

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def _setup(tmp_path: Path) -> tuple[KeyInfo, User]:
    user = User.objects.create_user(username="ws-user", password="x" * 12)
    info = apikey_get_by_hash(key_hash=key_hash(apikey_create(user=user).secret))
    assert info is not None
    return info, user


@sync_to_async
def _workspace(
    name: str, tmp_path: Path, *, user: User | None = None, default: bool = False, **policy: Any
) -> Workspace:
    row = Policy.objects.create(name=f"p-{name}", **policy) if policy else None
    workspace = Workspace.objects.create(name=name, root_path=str(tmp_path), policy=row)
    if user is not None:
        WorkspaceGrant.objects.create(workspace=workspace, user=user, is_default=default)
    return workspace


async def test_no_workspace_is_none(tmp_path: Path) -> None:
    key, _ = await _setup(tmp_path)
    assert await request_workspace(key, {}) is None


async def test_the_default_grant_and_its_policy(tmp_path: Path) -> None:
    key, user = await _setup(tmp_path)
    await _workspace("alpha", tmp_path, user=user)
    await _workspace("beta", tmp_path, user=user, default=True, tool_execution_mode="server", record_transcripts=False)
    found = await request_workspace(key, {})
    assert found is not None and found.name == "beta"
    assert found.policy.tool_execution_mode == "server" and found.policy.record_transcripts is False
    named = await request_workspace(key, {"x-lynkr-workspace": " alpha "})
    assert named is not None and named.name == "alpha"


async def test_several_workspaces_without_a_default_is_none(tmp_path: Path) -> None:
    key, user = await _setup(tmp_path)
    await _workspace("alpha", tmp_path, user=user)
    await _workspace("beta", tmp_path, user=user)
    assert await request_workspace(key, {}) is None


async def test_a_workspace_the_caller_may_not_use_is_refused_like_a_missing_one(tmp_path: Path) -> None:
    key, _ = await _setup(tmp_path)
    await _workspace("secret", tmp_path)  # no grant for this user
    with pytest.raises(PermissionDeniedError, match="'secret' does not exist or you have no access") as refused:
        await request_workspace(key, {"x-lynkr-workspace": "secret"})
    assert refused.value.status == 403
    with pytest.raises(PermissionDeniedError, match="'nowhere' does not exist"):
        await request_workspace(key, {"x-lynkr-workspace": "nowhere"})


async def test_answers_are_cached_per_key_and_header_until_cleared(tmp_path: Path, settings: Any) -> None:
    settings.LYNKR_KEY_CACHE_TTL = 3600
    key, user = await _setup(tmp_path)
    workspace = await _workspace("alpha", tmp_path, user=user, default=True)
    assert (await request_workspace(key, {})) is not None
    with pytest.raises(PermissionDeniedError):
        await request_workspace(key, {"x-lynkr-workspace": "later"})
    await _workspace("later", tmp_path, user=user)
    await sync_to_async(WorkspaceGrant.objects.filter(workspace=workspace).delete)()
    # Within the TTL: the cached answers (no query), the refusal included.
    cached = await request_workspace(key, {})
    assert cached is not None and cached.name == "alpha"
    with pytest.raises(PermissionDeniedError):
        await request_workspace(key, {"x-lynkr-workspace": "later"})
    request_workspace_cache_clear()
    assert (await request_workspace(key, {})) is not None  # now "later" is the only workspace
    assert (await request_workspace(key, {})).name == "later"  # type: ignore[union-attr]
    assert (await request_workspace(key, {"x-lynkr-workspace": "later"})) is not None


async def test_a_zero_ttl_reads_every_time(tmp_path: Path, settings: Any) -> None:
    settings.LYNKR_KEY_CACHE_TTL = 0
    key, user = await _setup(tmp_path)
    workspace = await _workspace("alpha", tmp_path, user=user)
    assert await request_workspace(key, {}) is not None
    await sync_to_async(workspace.delete)()
    assert await request_workspace(key, {}) is None
