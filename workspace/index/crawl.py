"""Walking a workspace for the index: every .gitignore respected, vendored and generated trees skipped.

Ignore rules, strongest first: the directories below are always skipped (as is any directory that is a
virtualenv or carries a CACHEDIR.TAG, https://bford.info/cachedir/); the workspace's own ignore globs; then the
.gitignore files from the deepest directory up to the root, then .git/info/exclude. Like git
(https://git-scm.com/docs/gitignore), a deeper .gitignore overrides a shallower one, the last matching line of
a file wins, ``!`` re-includes, and nothing inside an ignored directory can be re-included because the walk never
enters it. Symlinked directories are never followed; a symlinked file is indexed only if it resolves to a regular
file inside the root.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pathspec

from workspace.index.languages import language_for

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 1024 * 1024
BINARY_SNIFF_BYTES = 8192

# Tool caches, dependency installs and VCS metadata: never the workspace's own source.
SKIPPED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".bzr",
        "node_modules",
        "bower_components",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
        ".tox",
        ".nox",
        ".venv",
        ".eggs",
        ".gradle",
        ".next",
        ".nuxt",
        ".svelte-kit",
        ".parcel-cache",
        ".turbo",
        ".terraform",
        ".idea",
        ".cache",
    }
)
# Minified bundles and source maps are generated; compiled objects and archives are binary anyway.
SKIPPED_SUFFIXES = (
    ".min.js",
    ".min.css",
    ".js.map",
    ".css.map",
    ".pyc",
    ".pyo",
    ".class",
    ".o",
    ".a",
    ".so",
    ".dylib",
    ".dll",
    ".exe",
    ".jar",
    ".war",
    ".whl",
    ".zip",
    ".gz",
    ".tgz",
    ".bz2",
    ".xz",
    ".7z",
    ".png",
    ".jpg",
    ".jpeg",
    ".gif",
    ".ico",
    ".webp",
    ".pdf",
    ".woff",
    ".woff2",
    ".ttf",
    ".otf",
    ".eot",
    ".mo",
    ".sqlite3",
    ".db",
)


@dataclass(frozen=True, slots=True)
class CrawledFile:
    path: str  # relative to the root, '/'-separated
    size: int
    mtime_ns: int
    language: str  # '' when unknown


@dataclass(frozen=True, slots=True)
class _Rules:
    base: str  # the directory the .gitignore sits in, relative to the root ('' = root)
    spec: pathspec.GitIgnoreSpec


def crawl(root: Path, *, ignore_globs: Sequence[str] = (), max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[CrawledFile]:
    """The indexable files under ``root`` in a stable (sorted) order."""
    real_root = os.path.realpath(root)
    extra = pathspec.GitIgnoreSpec.from_lines(ignore_globs) if ignore_globs else None
    rules: list[_Rules] = []
    exclude = _load_rules(os.path.join(real_root, ".git", "info", "exclude"), "")
    if exclude is not None:
        rules.append(exclude)
    yield from _walk(real_root, "", rules, extra, max_bytes)


def _load_rules(path: str, base: str) -> _Rules | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    try:
        return _Rules(base, pathspec.GitIgnoreSpec.from_lines(lines))
    except Exception:  # a malformed pattern: git ignores the line; we ignore the file rather than fail the index
        logger.debug("unreadable ignore file %s", path, exc_info=True)
        return None


def _ignored(relative: str, is_dir: bool, rules: list[_Rules], extra: pathspec.GitIgnoreSpec | None) -> bool:
    probe = f"{relative}/" if is_dir else relative
    if extra is not None and extra.match_file(probe):
        return True
    for rule in reversed(rules):  # deepest first: it overrides the ones above
        local = probe[len(rule.base) + 1 :] if rule.base else probe
        verdict = rule.spec.check_file(local).include
        if verdict is not None:
            return verdict
    return False


def _walk(
    real_root: str, relative_dir: str, rules: list[_Rules], extra: pathspec.GitIgnoreSpec | None, max_bytes: int
) -> Iterator[CrawledFile]:
    absolute_dir = os.path.join(real_root, relative_dir) if relative_dir else real_root
    own = _load_rules(os.path.join(absolute_dir, ".gitignore"), relative_dir)
    if own is not None:
        rules = [*rules, own]
    try:
        with os.scandir(absolute_dir) as scanner:
            entries = sorted(scanner, key=lambda entry: entry.name)
    except OSError:
        logger.debug("cannot list %s", absolute_dir, exc_info=True)
        return
    for entry in entries:
        if entry.name == ".git":  # the directory, or the file a worktree or submodule has in its place
            continue
        relative = f"{relative_dir}/{entry.name}" if relative_dir else entry.name
        try:
            if entry.is_dir(follow_symlinks=False):
                if entry.name in SKIPPED_DIRS or _ignored(relative, True, rules, extra) or _is_generated(entry.path):
                    continue
                yield from _walk(real_root, relative, rules, extra, max_bytes)
                continue
            found = _file(real_root, entry, relative, max_bytes)
        except OSError:
            logger.debug("cannot stat %s", entry.path, exc_info=True)
            continue
        if found is not None and not _ignored(relative, False, rules, extra):
            yield found


def _is_generated(directory: str) -> bool:
    """A virtualenv of any name, or a cache directory tagged per the Cache Directory Tagging Specification."""
    return os.path.exists(os.path.join(directory, "pyvenv.cfg")) or os.path.exists(
        os.path.join(directory, "CACHEDIR.TAG")
    )


def _file(real_root: str, entry: os.DirEntry[str], relative: str, max_bytes: int) -> CrawledFile | None:
    if entry.name.lower().endswith(SKIPPED_SUFFIXES):
        return None
    if entry.is_symlink():
        target = os.path.realpath(entry.path)
        if not target.startswith(real_root + os.sep):
            return None
        info = os.stat(target)
    else:
        info = entry.stat(follow_symlinks=False)
    if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
        return None
    if info.st_size and _looks_binary(entry.path):
        return None
    return CrawledFile(path=relative, size=info.st_size, mtime_ns=info.st_mtime_ns, language=language_for(relative))


def _looks_binary(path: str) -> bool:
    # git's own test (buffer_is_binary): a NUL byte in the first 8000 bytes.
    with open(path, "rb") as handle:
        return b"\x00" in handle.read(BINARY_SNIFF_BYTES)


def is_binary(data: bytes) -> bool:
    return b"\x00" in data[:BINARY_SNIFF_BYTES]
