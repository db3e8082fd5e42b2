"""Clone, fetch, push and pull: the only git calls here that talk to another repository.

Remote URLs pass ``remote_url_check`` first and GitPython's unsafe-protocol and unsafe-option guards stay on
(no ``allow_unsafe_*`` anywhere); SAFE_ENV limits transports again inside git (GIT_ALLOW_PROTOCOL). Every message
that can carry a URL goes through ``redact``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import git
from git.exc import GitCommandError

from workspace.git.safety import (
    SAFE_ENV,
    GitOpError,
    NotARepository,
    branch_name_check,
    command_error,
    redact,
    remote_name_check,
    remote_url_check,
    repo_open,
)

if TYPE_CHECKING:
    from workspace.jobs import Progress

_OP_NAMES = {
    git.RemoteProgress.COUNTING: "counting objects",
    git.RemoteProgress.COMPRESSING: "compressing objects",
    git.RemoteProgress.WRITING: "writing objects",
    git.RemoteProgress.RECEIVING: "receiving objects",
    git.RemoteProgress.RESOLVING: "resolving deltas",
    git.RemoteProgress.FINDING_SOURCES: "finding sources",
    git.RemoteProgress.CHECKING_OUT: "checking out files",
}


class _RemoteProgress(git.RemoteProgress):
    """Feeds git's progress lines to a job ``Progress`` and asks it whether to stop.

    GitPython calls ``update`` from the thread pumping git's stderr. When ``check_cancelled`` raises, the
    exception ends that thread, which closes the pipe; git dies of SIGPIPE on its next progress line and the
    caller re-raises the stored exception instead of git's error (``reraise``).
    """

    def __init__(self, progress: Progress | None) -> None:
        super().__init__()
        self.progress = progress
        self.failure: Exception | None = None

    def update(
        self, op_code: int, cur_count: str | float, max_count: str | float | None = None, message: str = ""
    ) -> None:
        if self.progress is None:
            return
        stage = _OP_NAMES.get(op_code & self.OP_MASK, "working")
        text = redact(f"{stage} {message}".strip())
        try:
            self.progress.update(int(float(cur_count or 0)), int(float(max_count or 0)), text)
            self.progress.check_cancelled()
        except Exception as exc:
            self.failure = exc
            raise

    def reraise(self) -> None:
        if self.failure is not None:
            raise self.failure


@dataclass(frozen=True, slots=True)
class SyncResult:
    action: str  # "cloned" | "fetched"
    head: str | None
    branch: str | None
    fast_forwarded: bool
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "head": self.head,
            "branch": self.branch,
            "fast_forwarded": self.fast_forwarded,
            "message": self.message,
        }


def _is_empty_dir(root: Path) -> bool:
    return not root.exists() or (root.is_dir() and not any(root.iterdir()))


def repo_sync(root: Path, url: str, *, branch: str = "", progress: Progress | None = None) -> SyncResult:
    """Clone ``url`` into ``root`` when it is missing or empty; else fetch origin and fast-forward if possible."""
    remote_url_check(url)
    if branch:
        branch_name_check(branch)
    if _is_empty_dir(root):
        return _clone(root, url, branch=branch, progress=progress)
    return _fetch(root, url, progress=progress)


def _clone(root: Path, url: str, *, branch: str, progress: Progress | None) -> SyncResult:
    root.mkdir(parents=True, exist_ok=True)
    reporter = _RemoteProgress(progress)
    options: dict[str, Any] = {"branch": branch} if branch else {}
    try:
        # clone_from's progress type is a callable; GitPython wraps it in a CallableRemoteProgress.
        git.Repo.clone_from(url, root, progress=reporter.update, env=SAFE_ENV, **options)
    except GitCommandError as exc:
        reporter.reraise()
        raise command_error(exc, f"cloning {redact(url)}") from exc
    reporter.reraise()
    repo = repo_open(root)
    head = repo.head.commit.hexsha if repo.head.is_valid() else None
    current = None if repo.head.is_detached else repo.active_branch.name
    message = f"cloned {redact(url)} into {root}" + ("" if head else " (the remote has no commits yet)")
    return SyncResult("cloned", head, current, False, message)


def _fetch(root: Path, url: str, *, progress: Progress | None) -> SyncResult:
    try:
        repo = repo_open(root)
    except NotARepository as exc:
        raise NotARepository(
            f"{root} is not empty and is not a git repository, so {redact(url)} cannot be cloned into it"
        ) from exc
    origin = next((remote for remote in repo.remotes if remote.name == "origin"), None)
    if origin is None:
        origin = repo.create_remote("origin", url)
    elif origin.url != url:
        origin.set_url(url)  # the workspace's git_remote is authoritative; it was checked above
    reporter = _RemoteProgress(progress)
    try:
        origin.fetch(progress=reporter)
    except GitCommandError as exc:
        reporter.reraise()
        raise command_error(exc, f"fetching {redact(url)}") from exc
    reporter.reraise()
    outcome, message = ("detached", "HEAD is detached, so no branch was moved")
    if not repo.head.is_detached:
        outcome, message = _fast_forward(repo, _target_ref(repo, "origin"))
    head = repo.head.commit.hexsha if repo.head.is_valid() else None
    current = None if repo.head.is_detached else repo.active_branch.name
    return SyncResult("fetched", head, current, outcome == "forwarded", f"fetched {redact(url)}; {message}")


def _target_ref(repo: git.Repo, remote: str) -> str:
    """The remote-tracking ref the checked-out branch follows: its upstream, else <remote>/<same name>."""
    local_branch = repo.active_branch
    tracking = local_branch.tracking_branch()
    if tracking is not None and tracking.remote_name == remote:
        return tracking.path
    return f"refs/remotes/{remote}/{local_branch.name}"


def _fast_forward(repo: git.Repo, target_ref: str) -> tuple[str, str]:
    """Move the checked-out branch to ``target_ref`` when that is a fast-forward; never force.

    Returns (outcome, message); outcome is forwarded, up_to_date, ahead, diverged, missing, failed or detached.
    """
    if repo.head.is_detached:
        return "detached", "HEAD is detached, so no branch was moved"
    name = repo.active_branch.name
    short = target_ref.removeprefix("refs/remotes/")
    try:
        target = repo.commit(target_ref)
    except (ValueError, git.BadName):
        return "missing", f"{short} does not exist; nothing to fast-forward"
    local = repo.head.commit if repo.head.is_valid() else None
    if local is not None and local.hexsha == target.hexsha:
        return "up_to_date", f"{name} is up to date with {short}"
    if local is not None and not repo.is_ancestor(local, target):
        if repo.is_ancestor(target, local):
            return "ahead", f"{name} is ahead of {short}; nothing to fast-forward"
        return "diverged", f"{name} and {short} have diverged; not fast-forwarded (Lynkr never forces)"
    try:
        repo.git.merge("--ff-only", target.hexsha)
    except GitCommandError as exc:
        return "failed", str(command_error(exc, f"fast-forwarding {name} to {short}"))
    return "forwarded", f"fast-forwarded {name} to {short} ({target.hexsha[:12]})"


def _current_branch(repo: git.Repo) -> str:
    if repo.head.is_detached:
        raise GitOpError("HEAD is detached; name the branch")
    return repo.active_branch.name


def git_push(root: Path, *, remote: str = "origin", branch: str | None = None) -> dict[str, Any]:
    """Push a local branch to the same name on ``remote`` (an existing remote), never forced.

    Sets the upstream when the branch has none, so status can report ahead/behind afterwards.
    """
    repo = repo_open(root)
    target = remote_name_check(repo, remote)
    name = branch_name_check(branch or _current_branch(repo))
    if name not in {head.name for head in repo.heads}:
        raise GitOpError(f"no local branch named {name!r}")
    options: dict[str, Any] = {}
    head = repo.heads[name]
    if head.tracking_branch() is None:
        options["set_upstream"] = True
    try:
        results = target.push(refspec=f"refs/heads/{name}:refs/heads/{name}", **options)
    except GitCommandError as exc:
        raise command_error(exc, f"pushing {name} to {remote}") from exc
    refused = git.PushInfo.ERROR | git.PushInfo.REJECTED | git.PushInfo.REMOTE_REJECTED
    refs = [
        {"ref": info.remote_ref_string, "summary": redact(info.summary.strip()), "ok": not info.flags & refused}
        for info in results
    ]
    if results.error is not None or not refs or not all(ref["ok"] for ref in refs):
        detail = "; ".join(f"{ref['ref']}: {ref['summary']}" for ref in refs) or redact(str(results.error or ""))
        raise GitOpError(f"push of {name} to {remote} was refused: {detail or 'no ref was updated'}")
    return {"remote": remote, "branch": name, "refs": refs, "head": head.commit.hexsha}


def git_pull(root: Path, *, remote: str = "origin", branch: str | None = None) -> dict[str, Any]:
    """Fetch ``branch`` from ``remote`` and fast-forward the checked-out branch to it (never a merge commit)."""
    repo = repo_open(root)
    source = remote_name_check(repo, remote)
    current = _current_branch(repo)
    if branch is None:  # the upstream's branch name when it is on this remote, else the same name
        branch = _target_ref(repo, remote).removeprefix(f"refs/remotes/{remote}/")
    name = branch_name_check(branch)
    try:
        source.fetch(refspec=f"+refs/heads/{name}:refs/remotes/{remote}/{name}")
    except GitCommandError as exc:
        raise command_error(exc, f"fetching {name} from {remote}") from exc
    outcome, message = _fast_forward(repo, f"refs/remotes/{remote}/{name}")
    if outcome in ("diverged", "failed", "missing"):
        raise GitOpError(message)
    return {
        "remote": remote,
        "branch": current,
        "fast_forwarded": outcome == "forwarded",
        "head": repo.head.commit.hexsha if repo.head.is_valid() else None,
        "message": message,
    }
