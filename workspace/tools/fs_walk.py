"""Walking a workspace the way the fs tools see it: .gitignore honoured, policy applied, symlinks never followed.

Pure (no Django): the tools pass in the root and the policy. Used by ``workspace_list`` and by the pure-Python
fallback of ``workspace_search``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pathspec

from workspace.info import PolicyInfo

logger = logging.getLogger(__name__)

# A .gitignore bigger than this is not a hand-written ignore file; skipping it beats parsing megabytes of globs.
MAX_IGNORE_FILE_BYTES = 256 * 1024

EntryKind = Literal["file", "dir", "symlink", "other"]


@dataclass(frozen=True, slots=True)
class WalkEntry:
    relative: str  # '/'-separated, relative to the workspace root
    kind: EntryKind
    size: int
    depth: int  # 1 = directly under the directory the walk started from


@dataclass(frozen=True, slots=True)
class _IgnoreFile:
    base: str  # the directory holding the .gitignore, '' for the root
    spec: pathspec.GitIgnoreSpec


class IgnoreRules:
    """The .gitignore files in force for a directory, deepest last.

    git's precedence: a pattern in a deeper .gitignore overrides one in a shallower file, and the last matching
    line of a file wins (https://git-scm.com/docs/gitignore#_description). ``GitIgnoreSpec.check_file`` gives the
    per-file answer (True ignored, False re-included by '!', None no opinion); the deepest opinion wins. A file
    under an ignored directory is never reached because the walk prunes that directory, which is also git's rule.
    """

    __slots__ = ("_files",)

    def __init__(self, files: tuple[_IgnoreFile, ...] = ()) -> None:
        self._files = files

    def with_directory(self, real_dir: Path, relative: str) -> IgnoreRules:
        spec = _load_spec(real_dir / ".gitignore")
        if spec is None:
            return self
        return IgnoreRules((*self._files, _IgnoreFile(relative, spec)))

    def with_lines(self, lines: list[str]) -> IgnoreRules:
        if not lines:
            return self
        return IgnoreRules((*self._files, _IgnoreFile("", pathspec.GitIgnoreSpec.from_lines(lines))))

    def ignored(self, relative: str, *, is_dir: bool) -> bool:
        for ignore_file in reversed(self._files):
            if ignore_file.base:
                if not relative.startswith(ignore_file.base + "/"):
                    continue
                inner = relative[len(ignore_file.base) + 1 :]
            else:
                inner = relative
            result = ignore_file.spec.check_file(inner + "/" if is_dir else inner)
            if result.include is not None:
                return bool(result.include)
        return False


def _load_spec(path: Path) -> pathspec.GitIgnoreSpec | None:
    try:
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_IGNORE_FILE_BYTES:
            return None  # a symlinked .gitignore could point outside the root: not read
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return pathspec.GitIgnoreSpec.from_lines(text.splitlines())


def ignore_rules_for(real_root: Path, relative_dir: str) -> IgnoreRules:
    """The rules in force inside ``relative_dir``: .git/info/exclude, then each .gitignore from the root down."""
    rules = IgnoreRules()
    exclude = real_root / ".git" / "info" / "exclude"
    spec = _load_spec(exclude)
    if spec is not None:
        rules = IgnoreRules((_IgnoreFile("", spec),))
    rules = rules.with_directory(real_root, "")
    current = ""
    for part in [p for p in relative_dir.split("/") if p]:
        current = f"{current}/{part}" if current else part
        rules = rules.with_directory(real_root / current, current)
    return rules


def deny_only(policy: PolicyInfo) -> PolicyInfo:
    """The policy without its allow list: what a directory is checked against (its files get the full policy)."""
    return dataclasses.replace(policy, fs_allow_globs=())


def directory_denied(policy: PolicyInfo, relative: str) -> bool:
    # ".git/**" must hide ".git" itself, so the directory is checked with and without a trailing slash.
    denying = deny_only(policy)
    return not (denying.allows_path(relative) and denying.allows_path(relative + "/"))


def walk(
    real_root: Path,
    *,
    start: str = "",
    max_depth: int | None = None,
    include_hidden: bool = False,
    policy: PolicyInfo,
) -> Iterator[WalkEntry]:
    """Depth-first, names sorted; ignored and denied entries are absent; symlinks are reported, never followed.

    ``real_root`` must already be resolved (``os.path.realpath``) and ``start`` a clean relative directory
    inside it (``workspace.paths.resolve_inside`` checked it).
    """
    yield from _walk_dir(real_root, start, ignore_rules_for(real_root, start), 1, max_depth, include_hidden, policy)


def _walk_dir(
    real_root: Path,
    relative_dir: str,
    rules: IgnoreRules,
    depth: int,
    max_depth: int | None,
    include_hidden: bool,
    policy: PolicyInfo,
) -> Iterator[WalkEntry]:
    directory = real_root / relative_dir if relative_dir else real_root
    try:
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except OSError as exc:  # unreadable directory: listed as empty rather than failing the whole walk
        logger.debug("cannot list %s: %s", relative_dir or ".", exc.strerror)
        return
    for entry in entries:
        name = entry.name
        if name == ".git" or (not include_hidden and name.startswith(".")):
            continue
        relative = f"{relative_dir}/{name}" if relative_dir else name
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        mode = info.st_mode
        if stat.S_ISLNK(mode):
            if rules.ignored(relative, is_dir=False) or not policy.allows_path(relative):
                continue
            yield WalkEntry(relative, "symlink", 0, depth)
        elif stat.S_ISDIR(mode):
            if rules.ignored(relative, is_dir=True) or directory_denied(policy, relative):
                continue
            yield WalkEntry(relative, "dir", 0, depth)
            if max_depth is None or depth < max_depth:
                inner = rules.with_directory(real_root / relative, relative)
                yield from _walk_dir(real_root, relative, inner, depth + 1, max_depth, include_hidden, policy)
        else:
            if rules.ignored(relative, is_dir=False) or not policy.allows_path(relative):
                continue
            kind: EntryKind = "file" if stat.S_ISREG(mode) else "other"
            yield WalkEntry(relative, kind, info.st_size if kind == "file" else 0, depth)
