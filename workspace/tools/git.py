"""Git tools for the model: status, diffs and their review, stage/unstage, commit, push, pull, branches, notes.

Paths from the model are confined with workspace/paths.py (policy globs included) before git sees them. Policy:
push needs ``git_allow_push``; a commit message must match ``git_commit_pattern`` when one is set (``re.search``:
the admin anchors the pattern, e.g. ``^(feat|fix)(\\(.+\\))?: .+``); with ``git_require_tests`` a commit needs the
latest TestRun of the workspace to have passed on exactly the tree being committed (``tree_state``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model

from workspace.gitops import (
    GitOpError,
    commits_between,
    git_branches,
    git_commit,
    git_diff,
    git_pull,
    git_push,
    git_stage,
    git_status,
    git_unstage,
    tree_state,
)
from workspace.info import PolicyInfo, ToolContext
from workspace.models import TestOutcome, TestRun
from workspace.paths import PathRefused, normalise_relative, resolve_inside
from workspace.release_notes import release_notes_group, release_notes_render
from workspace.review import diff_review, diff_summary, parse_unified_diff
from workspace.tools.registry import ToolDenied, ToolError, tool

_LIST_LIMIT = 500  # entries per status list; the rest is counted, not listed

_PATHS = {
    "type": "array",
    "items": {"type": "string", "minLength": 1, "maxLength": 1000},
    "minItems": 1,
    "maxItems": 500,
    "description": "Paths relative to the workspace root (files or directories).",
}
_BRANCH = {"type": "string", "minLength": 1, "maxLength": 250}
_REMOTE = {"type": "string", "minLength": 1, "maxLength": 100, "description": "An existing remote; default origin."}
_DIFF_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "staged": {
            "type": "boolean",
            "description": "Diff the index (what would be committed) instead of the work tree.",
        },
        "paths": _PATHS,
        "ref": {
            "type": "string",
            "minLength": 1,
            "maxLength": 256,
            "description": "Compare against this commit, branch or tag (main, HEAD~1, v1.2.0), not the index.",
        },
    },
    "additionalProperties": False,
}
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}


@contextmanager
def _git_errors() -> Iterator[None]:
    try:
        yield
    except GitOpError as exc:
        raise ToolError(str(exc)) from exc
    except PathRefused as exc:
        raise ToolError(str(exc)) from exc


def _root(ctx: ToolContext) -> Path:
    root = ctx.workspace.root
    if not root.is_dir():
        raise ToolError(f"workspace {ctx.workspace.name!r} has no checkout at its root yet (run a git fetch first)")
    return root


def _confined(ctx: ToolContext, raw_paths: list[str], *, apply_policy: bool = True) -> list[str]:
    """Normalised relative paths, each refused unless it stays inside the root (and the policy allows it)."""
    policy = ctx.workspace.policy if apply_policy else None
    out: list[str] = []
    for raw in raw_paths:
        resolve_inside(ctx.workspace.root, raw, policy=policy, must_exist=False)
        out.append(normalise_relative(raw))
    return out


def _truncate(text: str, limit: int) -> tuple[str, bool]:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text, False
    return data[:limit].decode("utf-8", "ignore"), True


def _split_files(diff: str) -> list[str]:
    parts = re.split(r"(?m)^(?=diff --git )", diff)
    return [part for part in parts if part]


def _policy_filter(diff: str, policy: PolicyInfo) -> tuple[str, list[str]]:
    """Drop the files the policy does not let the model read (.env, *.pem, fs_deny_globs) from a diff."""
    kept: list[str] = []
    hidden: list[str] = []
    for part in _split_files(diff):
        files = parse_unified_diff(part)
        paths = [p for f in files for p in (f.path, f.old_path) if p]
        if paths and not all(policy.allows_path(p) for p in paths):
            hidden.extend(f.path for f in files)
        else:
            kept.append(part)
    return "".join(kept), hidden


def _diff_text(ctx: ToolContext, args: dict[str, Any]) -> str:
    root = _root(ctx)
    with _git_errors():
        paths = _confined(ctx, args.get("paths", []))
        return git_diff(root, staged=bool(args.get("staged")), paths=paths, ref=args.get("ref"))


@tool(
    "workspace_git_status",
    "Git status of the workspace: current branch, upstream with commits ahead/behind, and the staged, unstaged, "
    "untracked and conflicted files.",
    _EMPTY_SCHEMA,
)
def workspace_git_status(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    with _git_errors():
        status = git_status(_root(ctx))
    lists: dict[str, list[Any]] = {
        "staged": [c.as_dict() for c in status.staged],
        "unstaged": [c.as_dict() for c in status.unstaged],
        "untracked": list(status.untracked),
        "conflicted": list(status.conflicted),
    }
    out: dict[str, Any] = {
        "branch": status.branch,
        "detached": status.branch is None,
        "head": status.head,
        "upstream": status.upstream,
        "ahead": status.ahead,
        "behind": status.behind,
        "clean": status.clean,
    }
    out["truncated"] = any(len(items) > _LIST_LIMIT for items in lists.values())
    for key, items in lists.items():
        out[key] = items[:_LIST_LIMIT]
        if len(items) > _LIST_LIMIT:
            out[f"{key}_count"] = len(items)
    return out


@tool(
    "workspace_diff",
    "Unified diff of the workspace: unstaged changes by default, staged ones with staged=true, or against a ref. "
    "Optionally limited to paths. Files the policy keeps unreadable are left out. Long output is truncated.",
    _DIFF_SCHEMA,
)
def workspace_diff(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    diff, hidden = _policy_filter(_diff_text(ctx, args), ctx.workspace.policy)
    text, truncated = _truncate(diff, settings.LYNKR_TOOL_OUTPUT_MAX_BYTES)
    out: dict[str, Any] = {"diff": text, "truncated": truncated, "bytes": len(diff.encode("utf-8"))}
    if hidden:
        out["hidden_by_policy"] = hidden
    return out


@tool(
    "workspace_diff_summary",
    "Per-file summary of a diff (same arguments as workspace_diff): lines added/removed, new, deleted, renamed "
    "and binary files, and totals.",
    _DIFF_SCHEMA,
)
def workspace_diff_summary(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    return diff_summary(_diff_text(ctx, args)).as_dict()


@tool(
    "workspace_diff_review",
    "Review a diff before committing (same arguments as workspace_diff; use staged=true for what will be "
    "committed): flags secrets in added lines (masked), .env files, deleted tests, lockfile changes without their "
    "manifest, migrations, CI config changes, binary files and very large hunks. Returns findings and a summary.",
    _DIFF_SCHEMA,
)
def workspace_diff_review(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    files = parse_unified_diff(_diff_text(ctx, args))
    findings = diff_review(files)
    return {"findings": [f.as_dict() for f in findings], "summary": diff_summary(files).as_dict()}


_STAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "paths": _PATHS,
        "all": {"type": "boolean", "description": "Every change in the workspace (new, modified and deleted files)."},
    },
    "anyOf": [{"required": ["paths"]}, {"required": ["all"]}],
    "additionalProperties": False,
}


@tool(
    "workspace_git_stage",
    "Stage changes for the next commit: the given paths (files or directories) or all=true for every change. "
    "Files the policy keeps unreadable are skipped and listed.",
    _STAGE_SCHEMA,
    mutates=True,
)
def workspace_git_stage(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    root = _root(ctx)
    stage_all = bool(args.get("all"))
    if not stage_all and not args.get("paths"):
        raise ToolError("give paths to stage, or all=true")
    policy = ctx.workspace.policy
    with _git_errors():
        paths = [] if stage_all else _confined(ctx, args["paths"])
        return git_stage(root, paths=paths, stage_all=stage_all, path_allowed=policy.allows_path)


@tool(
    "workspace_git_unstage",
    "Unstage the given paths, or everything with all=true. The files themselves are not changed.",
    _STAGE_SCHEMA,
    mutates=True,
)
def workspace_git_unstage(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    root = _root(ctx)
    unstage_all = bool(args.get("all"))
    if not unstage_all and not args.get("paths"):
        raise ToolError("give paths to unstage, or all=true")
    with _git_errors():
        # No policy here: taking a .env back out of the index must always be possible.
        paths = [] if unstage_all else _confined(ctx, args["paths"], apply_policy=False)
        return git_unstage(root, paths=paths, unstage_all=unstage_all)


def _commit_policy(policy: PolicyInfo, args: dict[str, Any]) -> str | None:
    pattern = policy.git_commit_pattern
    if not pattern:
        return None
    try:
        matches = re.search(pattern, args.get("message", "")) is not None
    except re.error as exc:
        return f"policy {policy.name!r} has an invalid git_commit_pattern ({exc}); ask an admin to fix it"
    if matches:
        return None
    return (
        f"the commit message does not match the pattern policy {policy.name!r} requires "
        f"(git_commit_pattern / POLICY_GIT_COMMIT_PATTERN): {pattern}"
    )


def _require_tests(ctx: ToolContext, root: Path) -> None:
    latest = (
        TestRun.objects.filter(workspace_id=ctx.workspace.id).order_by("-started_at").values("outcome", "tree_state")
    ).first()
    prefix = "tests have not passed for the current tree: run workspace_test_run first"
    if latest is None:
        raise ToolDenied(f"{prefix} (no test run is recorded for this workspace; policy requires passing tests)")
    if latest["outcome"] != TestOutcome.PASSED:
        raise ToolDenied(f"{prefix} (the latest test run's outcome is {latest['outcome']!r})")
    with _git_errors():
        current = tree_state(root)
    if latest["tree_state"] != current:
        raise ToolDenied(f"{prefix} (the latest passing run was on a different tree; files changed since)")


def _username(user_id: int) -> str:
    user_model = get_user_model()
    name = user_model.objects.filter(pk=user_id).values_list(user_model.USERNAME_FIELD, flat=True).first()
    return str(name or "lynkr")


@tool(
    "workspace_git_commit",
    "Commit what is staged (see workspace_git_stage) with this message, authored by you. The workspace policy may "
    "require a message pattern, or passing tests on exactly this tree (run workspace_test_run first).",
    {
        "type": "object",
        "properties": {"message": {"type": "string", "minLength": 1, "maxLength": 20000}},
        "required": ["message"],
        "additionalProperties": False,
    },
    policy_check=_commit_policy,
    mutates=True,
)
def workspace_git_commit(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    root = _root(ctx)
    if ctx.workspace.policy.git_require_tests:
        _require_tests(ctx, root)
    with _git_errors():
        result = git_commit(root, message=args["message"], author_name=_username(ctx.user_id))
    return {"sha": result.sha, "branch": result.branch, "summary": result.summary, "files": list(result.files)}


def _push_policy(policy: PolicyInfo, args: dict[str, Any]) -> str | None:
    if policy.git_allow_push:
        return None
    return (
        f"pushing is disabled by policy {policy.name!r}: git_allow_push is off "
        "(an admin can enable it on the policy, or POLICY_GIT_ALLOW_PUSH=true for workspaces without one)"
    )


_REMOTE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"remote": _REMOTE, "branch": {**_BRANCH, "description": "Default: the current branch."}},
    "additionalProperties": False,
}


def _remote_op(op: Callable[..., dict[str, Any]], ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    root = _root(ctx)
    with _git_errors():
        return op(root, remote=args.get("remote", "origin"), branch=args.get("branch"))


@tool(
    "workspace_git_push",
    "Push a local branch (default: the current one) to a remote (default origin). Never forced. Needs the "
    "workspace policy to allow pushing.",
    _REMOTE_SCHEMA,
    policy_check=_push_policy,
    mutates=True,
)
def workspace_git_push(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    return _remote_op(git_push, ctx, args)


@tool(
    "workspace_git_pull",
    "Fetch a branch from a remote (default origin, default the current branch's upstream) and fast-forward the "
    "current branch to it. Fails rather than merging when the branches have diverged.",
    _REMOTE_SCHEMA,
    mutates=True,
)
def workspace_git_pull(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    return _remote_op(git_pull, ctx, args)


@tool(
    "workspace_git_branches",
    "Local branches (with their upstreams), remote-tracking branches, and the current branch.",
    _EMPTY_SCHEMA,
)
def workspace_git_branches(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    with _git_errors():
        found = git_branches(_root(ctx))
    return {
        "current": found["current"],
        "local": [{"name": b.name, "sha": b.sha, "upstream": b.upstream or None} for b in found["local"]],
        "remote": [{"name": b.name, "sha": b.sha} for b in found["remote"]],
    }


@tool(
    "workspace_release_notes",
    "Release notes in Markdown for the commits between two refs, grouped by conventional-commit type (feat, fix, "
    "..., breaking changes first). from_ref defaults to the latest tag (else the first commit), to_ref to HEAD.",
    {
        "type": "object",
        "properties": {
            "from_ref": {"type": "string", "minLength": 1, "maxLength": 256},
            "to_ref": {"type": "string", "minLength": 1, "maxLength": 256},
        },
        "additionalProperties": False,
    },
)
def workspace_release_notes(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    with _git_errors():
        found = commits_between(_root(ctx), args.get("from_ref"), args.get("to_ref"))
    title = f"Changes {found.from_ref or 'since the first commit'}..{found.to_ref}"
    markdown, truncated = _truncate(
        release_notes_render(found.commits, title=title), settings.LYNKR_TOOL_OUTPUT_MAX_BYTES
    )
    groups = release_notes_group(found.commits)
    return {
        "markdown": markdown,
        "from_ref": found.from_ref,
        "from_sha": found.from_sha,
        "to_ref": found.to_ref,
        "to_sha": found.to_sha,
        "commits": len(found.commits),
        "counts": {kind: len(members) for kind, _, members in groups.sections},
        "breaking": len(groups.breaking),
        "truncated": truncated or found.truncated,
    }
