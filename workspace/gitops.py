"""Git for workspaces: the public face of ``workspace.git`` plus the ``workspace_git_fetch`` job service.

Every function takes the workspace root (the repository's top level) and runs git through GitPython with argv
lists and a hardened environment (workspace/git/safety.py): hooks off, transports limited, literal pathspecs,
no credential prompts. Errors are ``GitOpError`` with a message safe to show the model (URL credentials
redacted).
"""

from __future__ import annotations

import logging
from typing import Any

from workspace.git.history import CommitInfo, CommitRange, commits_between, ref_check, resolve_commit
from workspace.git.local import (
    BranchInfo,
    Change,
    CommitResult,
    GitStatus,
    git_branches,
    git_commit,
    git_diff,
    git_stage,
    git_status,
    git_unstage,
)
from workspace.git.remote import SyncResult, git_pull, git_push, repo_sync
from workspace.git.safety import (
    GitOpError,
    NotARepository,
    RemoteRefused,
    UnknownRef,
    branch_name_check,
    redact,
    remote_url_check,
    repo_open,
)
from workspace.git.state import tree_state
from workspace.jobs import NullProgress, Progress

logger = logging.getLogger(__name__)

__all__ = [
    "BranchInfo",
    "Change",
    "CommitInfo",
    "CommitRange",
    "CommitResult",
    "GitOpError",
    "GitStatus",
    "NotARepository",
    "RemoteRefused",
    "SyncResult",
    "UnknownRef",
    "branch_name_check",
    "commits_between",
    "git_branches",
    "git_commit",
    "git_diff",
    "git_pull",
    "git_push",
    "git_stage",
    "git_status",
    "git_unstage",
    "redact",
    "ref_check",
    "remote_url_check",
    "repo_open",
    "resolve_commit",
    "tree_state",
    "workspace_git_fetch",
]


def workspace_git_fetch(*, workspace_id: int, progress: Progress = NullProgress()) -> dict[str, Any]:
    """Clone the workspace's git_remote into its root (missing or empty directory) or fetch origin and
    fast-forward the checked-out branch when it can (it reports, never forces, when it cannot).

    Returns {"action": "cloned"|"fetched", "head", "branch", "fast_forwarded", "message"}; raises GitOpError
    (RemoteRefused for a transport Lynkr does not allow) and whatever ``progress.check_cancelled`` raises.
    """
    from workspace.models import Workspace
    from workspace.selectors import workspace_root

    workspace = Workspace.objects.get(pk=workspace_id)
    if not workspace.git_remote:
        raise GitOpError(f"workspace {workspace.name!r} has no git remote to fetch from")
    root = workspace_root(workspace)
    result = repo_sync(root, workspace.git_remote, branch=workspace.default_branch, progress=progress or NullProgress())
    logger.info("git %s for workspace %s: %s", result.action, workspace.name, result.message)
    return result.as_dict()
