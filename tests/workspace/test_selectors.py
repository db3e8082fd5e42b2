"""Which workspace a caller works in: grants by user, team and key, defaults, and the header."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.models import ApiKey
from workspace.models import Policy, Workspace, WorkspaceGrant
from workspace.selectors import WorkspaceUnavailable, policy_defaults, workspace_list_for, workspace_resolve

pytestmark = pytest.mark.django_db


def _key(user: Any, prefix: str) -> ApiKey:
    return ApiKey.objects.create(user=user, prefix=prefix, key_hash=prefix.ljust(64, "0"))


@pytest.fixture
def people(django_user_model: Any) -> dict[str, Any]:
    from django.contrib.auth.models import Group

    alice = django_user_model.objects.create_user(username="alice")
    bob = django_user_model.objects.create_user(username="bob")
    team = Group.objects.create(name="team")
    bob.groups.add(team)
    return {"alice": alice, "bob": bob, "team": team}


def _resolve(user: Any, key: ApiKey | None = None, requested: str = "") -> str:
    groups = frozenset(user.groups.values_list("id", flat=True))
    info = workspace_resolve(user_id=user.pk, group_ids=groups, api_key_id=key.pk if key else None, requested=requested)
    return info.name


def test_grants_by_user_team_and_key(people: dict[str, Any], tmp_path: Any) -> None:
    alice, bob, team = people["alice"], people["bob"], people["team"]
    a = Workspace.objects.create(name="a", root_path=str(tmp_path))
    b = Workspace.objects.create(name="b", root_path=str(tmp_path))
    c = Workspace.objects.create(name="c", root_path=str(tmp_path))
    key = _key(alice, "sk-alice")
    WorkspaceGrant.objects.create(workspace=a, user=alice)
    WorkspaceGrant.objects.create(workspace=b, group=team)
    WorkspaceGrant.objects.create(workspace=c, api_key=key)

    def names(user: Any, key: ApiKey | None = None) -> list[str]:
        groups = frozenset(user.groups.values_list("id", flat=True))
        return [w.name for w in workspace_list_for(user_id=user.pk, group_ids=groups, api_key_id=key and key.pk)]

    assert names(alice) == ["a"]
    assert names(alice, key) == ["a", "c"]
    assert names(bob) == ["b"]


def test_header_names_a_workspace_and_a_forbidden_one_looks_missing(people: dict[str, Any], tmp_path: Any) -> None:
    alice = people["alice"]
    mine = Workspace.objects.create(name="mine", root_path=str(tmp_path))
    Workspace.objects.create(name="theirs", root_path=str(tmp_path))
    WorkspaceGrant.objects.create(workspace=mine, user=alice)
    assert _resolve(alice, requested="mine") == "mine"
    with pytest.raises(WorkspaceUnavailable) as forbidden:
        _resolve(alice, requested="theirs")
    with pytest.raises(WorkspaceUnavailable) as missing:
        _resolve(alice, requested="nosuch")
    assert str(forbidden.value).replace("theirs", "X") == str(missing.value).replace("nosuch", "X")


def test_default_grant_precedence_key_then_user_then_team(people: dict[str, Any], tmp_path: Any) -> None:
    bob, team = people["bob"], people["team"]
    ws = {n: Workspace.objects.create(name=n, root_path=str(tmp_path)) for n in ("k", "u", "t")}
    key = _key(bob, "sk-bob")
    WorkspaceGrant.objects.create(workspace=ws["t"], group=team, is_default=True)
    assert _resolve(bob, key) == "t"
    WorkspaceGrant.objects.create(workspace=ws["u"], user=bob, is_default=True)
    assert _resolve(bob, key) == "u"
    WorkspaceGrant.objects.create(workspace=ws["k"], api_key=key, is_default=True)
    assert _resolve(bob, key) == "k"
    assert _resolve(bob) == "u"  # another key of bob's does not get key k's default


def test_no_default_and_several_workspaces_asks_for_the_header(people: dict[str, Any], tmp_path: Any) -> None:
    alice = people["alice"]
    with pytest.raises(WorkspaceUnavailable, match="no workspace is available"):
        _resolve(alice)
    for name in ("one", "two"):
        WorkspaceGrant.objects.create(
            workspace=Workspace.objects.create(name=name, root_path=str(tmp_path)), user=alice
        )
    with pytest.raises(WorkspaceUnavailable, match="x-lynkr-workspace"):
        _resolve(alice)


def test_shared_and_disabled_workspaces(people: dict[str, Any], tmp_path: Any) -> None:
    alice = people["alice"]
    Workspace.objects.create(name="shared", root_path=str(tmp_path), shared_with_everyone=True)
    off = Workspace.objects.create(name="off", root_path=str(tmp_path), enabled=False)
    WorkspaceGrant.objects.create(workspace=off, user=alice)
    assert _resolve(alice) == "shared"
    with pytest.raises(WorkspaceUnavailable):
        _resolve(alice, requested="off")


def test_policy_from_row_or_from_environment(people: dict[str, Any], tmp_path: Any, settings: Any) -> None:
    settings.LYNKR_POLICY_GIT_ALLOW_PUSH = True
    settings.LYNKR_POLICY_MAX_STEPS = 5
    assert policy_defaults().git_allow_push is True and policy_defaults().max_steps == 5
    alice = people["alice"]
    strict = Policy.objects.create(name="strict", denied_tools=["workspace_git_*"], fs_deny_globs=["secrets/**"])
    ws = Workspace.objects.create(name="p", root_path=str(tmp_path), policy=strict)
    WorkspaceGrant.objects.create(workspace=ws, user=alice)
    info = workspace_resolve(user_id=alice.pk, group_ids=frozenset(), api_key_id=None)
    assert info.policy.name == "strict"
    assert not info.policy.allows_tool("workspace_git_push") and info.policy.allows_tool("fs_read")
    assert not info.policy.allows_path("secrets/a.txt") and info.policy.allows_path("src/a.py")
    assert not info.policy.allows_path(".env") and not info.policy.allows_path("deploy/key.pem")


def test_a_grant_names_exactly_one_subject(people: dict[str, Any], tmp_path: Any) -> None:
    from django.db import IntegrityError

    ws = Workspace.objects.create(name="x", root_path=str(tmp_path))
    with pytest.raises(IntegrityError):
        WorkspaceGrant.objects.create(workspace=ws, user=people["alice"], group=people["team"])
