"""Reads for workspaces: which workspace a caller may use, as a frozen WorkspaceInfo with its policy."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db.models import Q

from workspace.info import PolicyInfo, WorkspaceInfo
from workspace.models import Policy, Workspace, WorkspaceGrant


class WorkspaceUnavailable(LookupError):
    """No such workspace, or the caller has no grant for it; the message is safe to return."""


def policy_defaults() -> PolicyInfo:
    """The policy of a workspace without one: Lynkr's POLICY_* variables."""
    return PolicyInfo(
        name="default",
        tool_execution_mode=settings.LYNKR_TOOL_EXECUTION_MODE,
        max_steps=settings.LYNKR_POLICY_MAX_STEPS,
        max_tool_calls=settings.LYNKR_POLICY_MAX_TOOL_CALLS,
        git_allow_push=settings.LYNKR_POLICY_GIT_ALLOW_PUSH,
        git_require_tests=settings.LYNKR_POLICY_GIT_REQUIRE_TESTS,
        git_commit_pattern=settings.LYNKR_POLICY_GIT_COMMIT_PATTERN,
    )


def policy_info(policy: Policy | None) -> PolicyInfo:
    if policy is None:
        return policy_defaults()
    return PolicyInfo(
        name=policy.name,
        tool_execution_mode=policy.tool_execution_mode,
        max_steps=policy.max_steps,
        max_tool_calls=policy.max_tool_calls,
        progress_lines=policy.progress_lines,
        allowed_tools=tuple(policy.allowed_tools or ()),
        denied_tools=tuple(policy.denied_tools or ()),
        fs_allow_globs=tuple(policy.fs_allow_globs or ()),
        fs_deny_globs=tuple(policy.fs_deny_globs or ()),
        git_allow_push=policy.git_allow_push,
        git_require_tests=policy.git_require_tests,
        git_commit_pattern=policy.git_commit_pattern,
        web_enabled=policy.web_enabled,
        record_transcripts=policy.record_transcripts,
    )


def workspace_root(workspace: Workspace) -> Path:
    return Path(workspace.root_path) if workspace.root_path else settings.LYNKR_WORKSPACES_DIR / workspace.name


def workspace_info(workspace: Workspace) -> WorkspaceInfo:
    return WorkspaceInfo(
        id=workspace.pk,
        name=workspace.name,
        root=workspace_root(workspace),
        git_remote=workspace.git_remote,
        default_branch=workspace.default_branch,
        test_command=(
            workspace.test_command or settings.LYNKR_WORKSPACE_TEST_COMMAND or settings.LYNKR_POLICY_GIT_TEST_COMMAND
        ),
        test_timeout_seconds=float(workspace.test_timeout_seconds or settings.LYNKR_WORKSPACE_TEST_TIMEOUT),
        test_sandbox=workspace.test_sandbox,
        coverage_files=tuple(workspace.coverage_files or settings.LYNKR_WORKSPACE_TEST_COVERAGE_FILES),
        ignore_globs=tuple(workspace.ignore_globs or ()),
        policy=policy_info(workspace.policy),
    )


def workspace_get_info(*, workspace_id: int) -> WorkspaceInfo:
    return workspace_info(Workspace.objects.select_related("policy").get(pk=workspace_id))


def _grants_q(*, user_id: int, group_ids: frozenset[int], api_key_id: int | None) -> Q:
    q = Q(user_id=user_id) | Q(group_id__in=list(group_ids))
    if api_key_id is not None:
        q |= Q(api_key_id=api_key_id)
    return q


def workspace_list_for(*, user_id: int, group_ids: frozenset[int], api_key_id: int | None) -> list[WorkspaceInfo]:
    """Every enabled workspace the caller may use, by name."""
    granted = WorkspaceGrant.objects.filter(_grants_q(user_id=user_id, group_ids=group_ids, api_key_id=api_key_id))
    rows = (
        Workspace.objects.select_related("policy")
        .filter(enabled=True)
        .filter(Q(shared_with_everyone=True) | Q(pk__in=granted.values("workspace_id")))
        .order_by("name")
    )
    return [workspace_info(row) for row in rows]


def workspace_resolve(
    *, user_id: int, group_ids: frozenset[int], api_key_id: int | None, requested: str = ""
) -> WorkspaceInfo:
    """The workspace a request works in: the one it names (x-lynkr-workspace), else the caller's default.

    Defaults, most specific first: the key's default grant, the user's, a team's; else the only workspace the
    caller may use. A workspace the caller may not use is reported exactly like one that does not exist.
    """
    allowed = {
        info.name: info for info in workspace_list_for(user_id=user_id, group_ids=group_ids, api_key_id=api_key_id)
    }
    if requested:
        if requested not in allowed:
            raise WorkspaceUnavailable(f"workspace {requested!r} does not exist or you have no access to it")
        return allowed[requested]
    defaults = WorkspaceGrant.objects.filter(
        _grants_q(user_id=user_id, group_ids=group_ids, api_key_id=api_key_id), is_default=True
    ).values_list("workspace__name", "api_key_id", "user_id")
    ranked = sorted(defaults, key=lambda row: 0 if row[1] is not None else 1 if row[2] is not None else 2)
    for name, _, _ in ranked:
        if name in allowed:
            return allowed[name]
    if len(allowed) == 1:
        return next(iter(allowed.values()))
    if not allowed:
        raise WorkspaceUnavailable("no workspace is available to you; ask an admin for a workspace grant")
    names = ", ".join(sorted(allowed))
    raise WorkspaceUnavailable(
        f"several workspaces are available ({names}); name one with the x-lynkr-workspace header"
    )
