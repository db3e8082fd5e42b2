"""``tree_state``: one digest for HEAD plus every uncommitted change, so "tests passed on this tree" is checkable."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from git.exc import GitCommandError

from workspace.git.safety import command_error, repo_open

# Binary-safe, full-hash, no external diff drivers or textconv filters (both run configured commands).
_DIFF_ARGS = ("--binary", "--full-index", "--no-color", "--no-ext-diff", "--no-textconv", "--no-renames")


def tree_state(root: Path) -> str:
    """sha256 hex of HEAD's commit, the staged and unstaged diffs of tracked files, and every untracked,
    non-ignored file's path and content hash. The same tree gives the same digest; any edit changes it.

    Works before the first commit (HEAD unborn); raises NotARepository when ``root`` is not a repository's top.
    """
    repo = repo_open(root)
    digest = hashlib.sha256()

    def section(name: str, data: bytes) -> None:
        # Length-prefixed so no two different states can concatenate to the same byte stream.
        digest.update(b"%s\0%d\0" % (name.encode(), len(data)))
        digest.update(data)

    section("head", repo.head.commit.hexsha.encode() if repo.head.is_valid() else b"unborn")
    try:
        staged = repo.git.diff("--cached", *_DIFF_ARGS, stdout_as_string=False)
        unstaged = repo.git.diff(*_DIFF_ARGS, stdout_as_string=False)
        untracked = repo.git.ls_files("--others", "--exclude-standard", "-z", stdout_as_string=False)
    except GitCommandError as exc:
        raise command_error(exc, "computing the tree state") from exc
    section("staged", staged)
    section("unstaged", unstaged)
    for raw in sorted(name for name in untracked.split(b"\0") if name):
        section("untracked", raw)
        section("content", _content_hash(Path(os.fsdecode(os.path.join(os.fsencode(root), raw)))))
    return digest.hexdigest()


def _content_hash(path: Path) -> bytes:
    try:
        info = path.lstat()
    except FileNotFoundError:  # deleted between the listing and now
        return b"missing"
    if stat.S_ISLNK(info.st_mode):
        return b"link:" + os.fsencode(os.readlink(path))
    if not stat.S_ISREG(info.st_mode):
        return b"other"  # a nested repository ("dir/") or a special file
    file_hash = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            file_hash.update(block)
    mode = b"x" if info.st_mode & stat.S_IXUSR else b"-"
    return mode + file_hash.digest()
