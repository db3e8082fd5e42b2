"""Status, diff, stage, unstage, commit and branches of a workspace repository (local operations only).

Paths reaching this module are already normalised and confined by the caller (workspace/paths.py); they still
go after ``--`` and git reads them literally (GIT_LITERAL_PATHSPECS in SAFE_ENV).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import git
from git.exc import GitCommandError

from workspace.git.history import resolve_commit
from workspace.git.safety import GitOpError, command_error, repo_open

_STATUS_WORDS = {
    "M": "modified",
    "T": "type changed",
    "A": "added",
    "D": "deleted",
    "R": "renamed",
    "C": "copied",
    "U": "unmerged",
}
_CHUNK = 200  # paths per `git add` / `git reset` call, well under any argv limit


@dataclass(frozen=True, slots=True)
class Change:
    path: str
    status: str
    orig_path: str = ""

    def as_dict(self) -> dict[str, str]:
        out = {"path": self.path, "status": self.status}
        if self.orig_path:
            out["orig_path"] = self.orig_path
        return out


@dataclass(frozen=True, slots=True)
class GitStatus:
    branch: str | None  # None when HEAD is detached
    head: str | None  # None before the first commit
    upstream: str | None = None
    ahead: int | None = None
    behind: int | None = None
    staged: tuple[Change, ...] = ()
    unstaged: tuple[Change, ...] = ()
    untracked: tuple[str, ...] = ()
    conflicted: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        return not (self.staged or self.unstaged or self.untracked or self.conflicted)


@dataclass(frozen=True, slots=True)
class CommitResult:
    sha: str
    branch: str | None
    summary: str
    files: tuple[str, ...] = field(default_factory=tuple)


def _run(repo: git.Repo, action: str, command: str, *args: str, **kwargs: Any) -> str:
    """``git <command> <args>`` through GitPython (argv only, SAFE_ENV applied), decoded as UTF-8."""
    try:
        out = getattr(repo.git, command.replace("-", "_"))(*args, stdout_as_string=False, **kwargs)
    except GitCommandError as exc:
        raise command_error(exc, action) from exc
    return bytes(out).decode("utf-8", "replace")


def _fields(raw: str) -> Iterator[str]:
    return iter(raw.split("\0"))


def git_status(root: Path) -> GitStatus:
    """Branch, upstream with ahead/behind, and the staged, unstaged, untracked and conflicted paths."""
    repo = repo_open(root)
    raw = _run(repo, "git status", "status", "--porcelain=v2", "--branch", "-z", "--untracked-files=all")
    info: dict[str, Any] = {"branch": None, "head": None}
    staged: list[Change] = []
    unstaged: list[Change] = []
    untracked: list[str] = []
    conflicted: list[str] = []
    entries = _fields(raw)
    for entry in entries:
        if entry.startswith("# branch.oid "):
            oid = entry.removeprefix("# branch.oid ")
            info["head"] = None if oid == "(initial)" else oid
        elif entry.startswith("# branch.head "):
            name = entry.removeprefix("# branch.head ")
            info["branch"] = None if name == "(detached)" else name
        elif entry.startswith("# branch.upstream "):
            info["upstream"] = entry.removeprefix("# branch.upstream ")
        elif entry.startswith("# branch.ab "):
            ahead, behind = entry.removeprefix("# branch.ab ").split()
            info["ahead"], info["behind"] = int(ahead), -int(behind)
        elif entry.startswith(("1 ", "2 ")):
            # git-status(1) "Porcelain Format Version 2": 8 fields before the path, 9 for renames/copies,
            # whose original path follows as the next NUL-separated entry.
            parts = entry.split(" ", 9 if entry[0] == "2" else 8)
            xy, path = parts[1], parts[-1]
            orig = next(entries, "") if entry[0] == "2" else ""
            if xy[0] != ".":
                staged.append(Change(path, _STATUS_WORDS.get(xy[0], xy[0]), orig))
            if xy[1] != ".":
                unstaged.append(Change(path, _STATUS_WORDS.get(xy[1], xy[1])))
        elif entry.startswith("u "):
            conflicted.append(entry.split(" ", 10)[-1])
        elif entry.startswith("? "):
            untracked.append(entry[2:])
    return GitStatus(
        **info,
        staged=tuple(staged),
        unstaged=tuple(unstaged),
        untracked=tuple(untracked),
        conflicted=tuple(conflicted),
    )


def git_diff(root: Path, *, staged: bool = False, paths: Sequence[str] = (), ref: str | None = None) -> str:
    """Unified diff: work tree vs index (default), index vs HEAD (``staged``), or against ``ref`` (a commit)."""
    repo = repo_open(root)
    args = ["diff", "--no-color", "--no-ext-diff", "--no-textconv", "--find-renames"]
    if staged:
        args.append("--cached")
    if ref:
        args.append(resolve_commit(repo, ref).hexsha)  # resolved first: git never sees the raw string as an option
    return _run(repo, "git diff", *args, "--", *[path or "." for path in paths])


def _under(path: str, selectors: Sequence[str]) -> bool:
    return any(not sel or path == sel or path.startswith(sel + "/") for sel in selectors)


def git_stage(
    root: Path,
    *,
    paths: Sequence[str] = (),
    stage_all: bool = False,
    path_allowed: Callable[[str], bool] = lambda _path: True,
) -> dict[str, list[str]]:
    """Stage changed files (new, modified, deleted) under ``paths``, or every change with ``stage_all``.

    Only files ``git status`` reports as changed are candidates, one by one, so a directory argument cannot
    sweep in a file the policy refuses (``path_allowed`` false: reported as skipped, never staged).
    """
    if not stage_all and not paths:
        raise GitOpError("give paths to stage, or all=true")
    status = git_status(root)
    candidates = sorted({c.path for c in status.unstaged} | set(status.untracked) | set(status.conflicted))
    selectors = [""] if stage_all else list(paths)
    chosen = [path for path in candidates if _under(path, selectors)]
    allowed = [path for path in chosen if path_allowed(path)]
    skipped = sorted(set(chosen) - set(allowed))
    unmatched = [] if stage_all else [sel for sel in paths if not any(_under(p, [sel]) for p in candidates)]
    repo = repo_open(root)
    for start in range(0, len(allowed), _CHUNK):
        _run(repo, "git add", "add", "-A", "--", *allowed[start : start + _CHUNK])
    return {"staged": allowed, "skipped_by_policy": skipped, "unchanged": unmatched}


def git_unstage(root: Path, *, paths: Sequence[str] = (), unstage_all: bool = False) -> dict[str, list[str]]:
    """Move staged changes back to the work tree (the files themselves are untouched)."""
    if not unstage_all and not paths:
        raise GitOpError("give paths to unstage, or all=true")
    before = {c.path for c in git_status(root).staged}
    repo = repo_open(root)
    selectors = ["."] if unstage_all else [path or "." for path in paths]
    for start in range(0, len(selectors), _CHUNK):
        chunk = selectors[start : start + _CHUNK]
        if repo.head.is_valid():
            _run(repo, "git reset", "reset", "-q", "HEAD", "--", *chunk)
        else:  # before the first commit there is no HEAD to reset to: drop the paths from the index
            _run(repo, "git rm --cached", "rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", *chunk)
    after = {c.path for c in git_status(root).staged}
    return {"unstaged": sorted(before - after), "still_staged": sorted(after)}


def commit_email(repo: git.Repo, username: str) -> str:
    """The repository's own user.email if set (only .git/config: the server's global one is not the user's)."""
    reader = repo.config_reader("repository")
    email = str(reader.get_value("user", "email", default="")) if reader.has_section("user") else ""
    return email or f"{username}@lynkr.local"


def _ident(value: str) -> str:
    # git refuses '<', '>' and newlines in an ident; usernames are [\w.@+-] but stay defensive.
    cleaned = "".join(ch for ch in value if ch not in "<>\n\r\0").strip()
    return cleaned or "lynkr"


def git_commit(root: Path, *, message: str, author_name: str) -> CommitResult:
    """Commit the index as ``author_name`` (author and committer), hooks off, message passed as one argument."""
    if not message.strip():
        raise GitOpError("the commit message is empty")
    if "\0" in message:
        raise GitOpError("the commit message contains a NUL byte")
    repo = repo_open(root)
    files = [name for name in _run(repo, "git diff", "diff", "--cached", "--name-only", "-z").split("\0") if name]
    if not files:
        raise GitOpError("nothing is staged; stage changes with workspace_git_stage first")
    name = _ident(author_name)
    email = _ident(commit_email(repo, name))
    env = {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }
    _run(repo, "git commit", "commit", "-q", "--no-verify", "-m", message, env=env)
    head = repo.head.commit
    branch = None if repo.head.is_detached else repo.active_branch.name
    return CommitResult(sha=head.hexsha, branch=branch, summary=str(head.summary), files=tuple(files))


@dataclass(frozen=True, slots=True)
class BranchInfo:
    name: str
    sha: str
    upstream: str = ""
    current: bool = False


def git_branches(root: Path) -> dict[str, Any]:
    """Local branches (with upstream), remote-tracking branches, and the current branch (None when detached)."""
    repo = repo_open(root)
    raw = _run(
        repo,
        "git for-each-ref",
        "for-each-ref",
        "--format=%(refname)%00%(objectname)%00%(upstream:short)%00%(HEAD)",
        "refs/heads",
        "refs/remotes",
    )
    local: list[BranchInfo] = []
    remote: list[BranchInfo] = []
    for line in raw.splitlines():
        refname, sha, upstream, head = [*line.split("\0"), "", "", ""][:4]
        if refname.startswith("refs/heads/"):
            local.append(BranchInfo(refname.removeprefix("refs/heads/"), sha, upstream, head == "*"))
        elif refname.startswith("refs/remotes/") and not refname.endswith("/HEAD"):
            remote.append(BranchInfo(refname.removeprefix("refs/remotes/"), sha))
    current = None if repo.head.is_detached else repo.active_branch.name
    return {"current": current, "local": local, "remote": remote}
