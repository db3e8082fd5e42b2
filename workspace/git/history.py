"""Resolving refs the model names, and the commits between two of them (for release notes)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import git
from git.exc import BadName, BadObject, GitCommandError

from workspace.git.safety import GitOpError, UnknownRef, repo_open

_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f\\]")


def ref_check(ref: str) -> str:
    """Refuse what could be read as an option or a range: a leading '-', '..' (ranges are built here, from
    resolved hashes), whitespace and control characters."""
    if not ref:
        raise GitOpError("the ref is empty")
    if ref.startswith("-"):
        raise GitOpError(f"ref {ref!r} starts with '-'; refused so it cannot be read as an option")
    if ".." in ref:
        raise GitOpError(f"ref {ref!r} contains '..'; give single refs, not a range")
    if len(ref) > 256 or _REF_FORBIDDEN.search(ref):
        raise GitOpError(f"ref {ref!r} contains whitespace or control characters, or is too long")
    return ref


def resolve_commit(repo: git.Repo, ref: str) -> git.Commit:
    """The commit ``ref`` names (branch, tag, sha, HEAD~2 ...), with annotated tags peeled; UnknownRef otherwise."""
    ref_check(ref)
    try:
        obj = repo.rev_parse(ref)
    except (BadName, BadObject, ValueError, IndexError, GitCommandError) as exc:
        raise UnknownRef(f"unknown ref {ref!r}: no branch, tag or commit has that name") from exc
    while isinstance(obj, git.TagObject):
        obj = obj.object
    if not isinstance(obj, git.Commit):
        raise UnknownRef(f"ref {ref!r} names a {obj.type}, not a commit")
    return obj


@dataclass(frozen=True, slots=True)
class CommitInfo:
    sha: str
    subject: str
    body: str
    author: str


@dataclass(frozen=True, slots=True)
class CommitRange:
    from_ref: str | None  # None: from the first commit
    from_sha: str | None
    to_ref: str
    to_sha: str
    commits: tuple[CommitInfo, ...]
    truncated: bool


def latest_tag(repo: git.Repo, commit: git.Commit) -> str | None:
    """The nearest tag reachable from ``commit`` (``git describe --tags --abbrev=0``), or None."""
    try:
        return str(repo.git.describe("--tags", "--abbrev=0", commit.hexsha)).strip() or None
    except GitCommandError:
        return None  # "No names found": the history has no tag


def commits_between(
    root: Path, from_ref: str | None = None, to_ref: str | None = None, *, limit: int = 1000
) -> CommitRange:
    """Commits reachable from ``to_ref`` (default HEAD) but not from ``from_ref``, newest first, merges left out.

    ``from_ref`` defaults to the latest tag reachable from ``to_ref``; with no tag the whole history is listed,
    root commit included (it belongs to the first release).
    """
    repo = repo_open(root)
    if not repo.head.is_valid() and not to_ref:
        raise GitOpError("the repository has no commits yet")
    to_name = to_ref or "HEAD"
    to_commit = resolve_commit(repo, to_name)
    from_name = from_ref or latest_tag(repo, to_commit)
    from_commit = resolve_commit(repo, from_name) if from_name else None
    # The range is built from resolved hashes only, so no model-supplied text reaches rev-list.
    rev = f"{from_commit.hexsha}..{to_commit.hexsha}" if from_commit else to_commit.hexsha
    commits: list[CommitInfo] = []
    for commit in repo.iter_commits(rev, no_merges=True, max_count=limit + 1):
        message = commit.message if isinstance(commit.message, str) else commit.message.decode("utf-8", "replace")
        subject, _, body = message.partition("\n")
        commits.append(CommitInfo(commit.hexsha, subject.strip(), body.strip(), str(commit.author.name or "")))
    return CommitRange(
        from_ref=from_name,
        from_sha=from_commit.hexsha if from_commit else None,
        to_ref=to_name,
        to_sha=to_commit.hexsha,
        commits=tuple(commits[:limit]),
        truncated=len(commits) > limit,
    )
