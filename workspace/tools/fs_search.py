"""Text and regex search over a workspace: ripgrep when installed, else a bounded pure-Python scan.

Both engines see the same files: .gitignore honoured, hidden files searched except .git, symlinks not followed,
binary and oversized files skipped; every hit is checked again against the root and the policy before it is
returned, so neither engine can leak a file outside the workspace or one the policy denies.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import shutil
import stat
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pathspec

from workspace.info import PolicyInfo
from workspace.paths import PathRefused, resolve_inside
from workspace.tools.fs_walk import walk

logger = logging.getLogger(__name__)

BINARY_SNIFF_BYTES = 8192
MAX_LINE_CHARS = 10_000  # longer lines (minified bundles) are skipped by the Python engine: backtracking bound
MAX_SCANNED_BYTES = 64 * 1024 * 1024  # the Python engine stops after this much text and says it stopped
MAX_TEXT_CHARS = 500  # of the matching line, per hit
RG_TIMEOUT_SECONDS = 30.0


class SearchRefused(ValueError):
    """The pattern or glob cannot be searched; the message is safe to show the model."""


@dataclass(frozen=True, slots=True)
class SearchRequest:
    pattern: str
    regex: bool
    case_sensitive: bool
    path_glob: str
    max_results: int
    max_file_bytes: int
    policy: PolicyInfo


@dataclass(frozen=True, slots=True)
class SearchHit:
    path: str
    line: int
    column: int  # 1-based, in characters
    text: str


@dataclass(frozen=True, slots=True)
class SearchResult:
    hits: tuple[SearchHit, ...]
    truncated: bool
    engine: str


def compile_pattern(request: SearchRequest) -> re.Pattern[str]:
    """Python's compiled form; also the validation both engines share (a clear error for a bad regex)."""
    flags = 0 if request.case_sensitive else re.IGNORECASE
    source = request.pattern if request.regex else re.escape(request.pattern)
    try:
        return re.compile(source, flags)
    except re.error as exc:
        raise SearchRefused(f"invalid regular expression: {exc}") from None


def glob_spec(path_glob: str) -> pathspec.GitIgnoreSpec | None:
    """``path_glob`` with gitignore semantics, as ripgrep's --glob: '*.py' matches at any depth, 'src/*.py' is
    anchored at the root (https://github.com/BurntSushi/ripgrep/blob/master/GUIDE.md#manual-filtering-globs)."""
    if not path_glob:
        return None
    if path_glob.startswith("!"):
        raise SearchRefused("path_glob selects files to search; exclusions ('!...') are not supported")
    return pathspec.GitIgnoreSpec.from_lines([path_glob])


def search(real_root: Path, request: SearchRequest) -> SearchResult:
    compiled = compile_pattern(request)
    globs = glob_spec(request.path_glob)
    rg = shutil.which("rg")
    if rg is not None:
        result = _search_ripgrep(rg, real_root, request, globs)
        if result is not None:
            return result
    if request.regex:
        _refuse_nested_repeats(compiled)
    return _search_python(real_root, request, compiled, globs)


# --- shared filtering ------------------------------------------------------------------------------------------


class _Admission:
    """Whether a file reported by an engine may be shown: inside the root, allowed, a regular text file."""

    def __init__(self, real_root: Path, request: SearchRequest, globs: pathspec.GitIgnoreSpec | None) -> None:
        self._root = real_root
        self._request = request
        self._globs = globs
        self._seen: dict[str, bool] = {}

    def admits(self, relative: str) -> bool:
        if relative not in self._seen:
            self._seen[relative] = self._check(relative)
        return self._seen[relative]

    def _check(self, relative: str) -> bool:
        if self._globs is not None and not self._globs.match_file(relative):
            return False
        try:
            real = resolve_inside(self._root, relative, policy=self._request.policy)
        except PathRefused:
            return False
        if real.relative_to(self._root).as_posix() != relative:
            return False  # reached through a symlink somewhere on the way: not followed
        try:
            info = os.lstat(real)
        except OSError:
            return False
        return stat.S_ISREG(info.st_mode) and info.st_size <= self._request.max_file_bytes


def _hit(path: str, line_number: int, line: str, start: int) -> SearchHit:
    text = line.rstrip("\r\n")
    return SearchHit(path, line_number, start + 1, text[:MAX_TEXT_CHARS])


# --- ripgrep ---------------------------------------------------------------------------------------------------


def _ripgrep_argv(rg: str, request: SearchRequest) -> list[str]:
    argv = [
        rg,
        "--json",
        "--no-config",  # RIPGREP_CONFIG_PATH must not change what the tool sees
        "--hidden",
        "--no-follow",
        "--no-require-git",  # honour .gitignore whether or not the root is a git checkout, like the walker
        "--no-ignore-parent",  # ignore files above the root are not the workspace's
        "--no-ignore-global",
        "--no-ignore-dot",  # .ignore / .rgignore are ripgrep's own; the Python engine reads only .gitignore
        "--glob=!.git",
        f"--max-filesize={request.max_file_bytes}",
        f"--max-count={request.max_results + 1}",
        "--ignore-case" if not request.case_sensitive else "--case-sensitive",
    ]
    if not request.regex:
        argv.append("--fixed-strings")
    if request.path_glob:
        argv.append(f"--glob={request.path_glob}")
    argv += ["--", request.pattern, "."]
    return argv


def _search_ripgrep(
    rg: str, real_root: Path, request: SearchRequest, globs: pathspec.GitIgnoreSpec | None
) -> SearchResult | None:
    """None when ripgrep cannot run this pattern (its regex dialect differs: lookaround, backreferences)."""
    admission = _Admission(real_root, request, globs)
    hits: list[SearchHit] = []
    truncated = False
    process = subprocess.Popen(
        _ripgrep_argv(rg, request),
        cwd=real_root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # unread stderr must not fill a pipe and stall ripgrep
    )
    timer = threading.Timer(RG_TIMEOUT_SECONDS, process.kill)
    timer.start()
    try:
        assert process.stdout is not None
        for raw in process.stdout:
            hit = _ripgrep_hit(raw)
            if hit is None or not admission.admits(hit.path):
                continue
            if len(hits) == request.max_results:
                truncated = True
                break
            hits.append(hit)
    finally:
        timer.cancel()
        if process.poll() is None:
            process.kill()
        if process.stdout is not None:
            process.stdout.close()
        process.wait()
    if process.returncode == 2 and not hits:
        logger.info("ripgrep could not run this search; using the Python engine")
        return None
    if process.returncode not in (0, 1, 2) and not truncated:
        truncated = True  # killed by the timeout: what it found so far, flagged incomplete
    return SearchResult(tuple(hits), truncated, "ripgrep")


def _ripgrep_hit(raw: bytes) -> SearchHit | None:
    # The JSON Lines format: https://docs.rs/grep-printer/latest/grep_printer/struct.JSON.html ; paths and lines
    # that are not valid UTF-8 come as {"bytes": base64} and are skipped (the Python engine decodes them lossily).
    try:
        message: dict[str, Any] = json.loads(raw)
    except ValueError:
        return None
    if message.get("type") != "match":
        return None
    data = message.get("data", {})
    path = data.get("path", {}).get("text")
    line = data.get("lines", {}).get("text")
    submatches = data.get("submatches") or [{"start": 0}]
    if not isinstance(path, str) or not isinstance(line, str):
        return None
    relative = path[2:] if path.startswith("./") else path
    start_byte = int(submatches[0].get("start", 0))
    column = len(line.encode("utf-8")[:start_byte].decode("utf-8", errors="replace"))
    return _hit(relative, int(data.get("line_number") or 0), line, column)


# --- Python ----------------------------------------------------------------------------------------------------


def _refuse_nested_repeats(compiled: re.Pattern[str]) -> None:
    """Refuse a repeat inside a repeat, like (a+)+ : the classic exponential backtracking case.

    ripgrep's engine is linear-time so it needs no such rule; Python's backtracking engine does, and a thread
    stuck in re.search cannot be interrupted. The parser is CPython's own (private but stable since 3.11).
    """
    try:
        parser: Any = importlib.import_module("re._parser")
        tree = parser.parse(compiled.pattern, compiled.flags)
    except Exception:  # an interpreter without re._parser just loses this guard
        return
    repeat_ops = {parser.MAX_REPEAT, parser.MIN_REPEAT, getattr(parser, "POSSESSIVE_REPEAT", None)}

    def visit(items: Any, inside_repeat: bool) -> None:
        for op, value in items:
            if op in repeat_ops:
                _, high, inner = value
                repeats = high > 1  # a? or {0,1} cannot blow up; +, *, {2,} can
                if repeats and inside_repeat:
                    raise SearchRefused(
                        "this regular expression nests repetitions (like (a+)+), which can take exponential "
                        "time; simplify it or search for a literal string"
                    )
                visit(inner, inside_repeat or repeats)
            elif op is parser.SUBPATTERN:
                visit(value[-1], inside_repeat)
            elif op is parser.BRANCH:
                for branch in value[1]:
                    visit(branch, inside_repeat)
            elif op in (parser.ASSERT, parser.ASSERT_NOT):
                visit(value[1], inside_repeat)

    visit(tree, False)


def _search_python(
    real_root: Path, request: SearchRequest, compiled: re.Pattern[str], globs: pathspec.GitIgnoreSpec | None
) -> SearchResult:
    admission = _Admission(real_root, request, globs)
    hits: list[SearchHit] = []
    scanned = 0
    for entry in walk(real_root, include_hidden=True, policy=request.policy):
        if entry.kind != "file" or entry.size > request.max_file_bytes or not admission.admits(entry.relative):
            continue
        if scanned + entry.size > MAX_SCANNED_BYTES:
            return SearchResult(tuple(hits), True, "python")
        scanned += entry.size
        for hit in _scan_file(real_root / entry.relative, entry.relative, compiled):
            if len(hits) == request.max_results:
                return SearchResult(tuple(hits), True, "python")
            hits.append(hit)
    return SearchResult(tuple(hits), False, "python")


def _scan_file(path: Path, relative: str, compiled: re.Pattern[str]) -> Iterator[SearchHit]:
    try:
        data = path.read_bytes()
    except OSError:
        return
    if b"\x00" in data[:BINARY_SNIFF_BYTES]:
        return
    text = data.decode("utf-8", errors="replace")
    # split("\n"), not splitlines(): form feeds and U+2028 are not line ends for ripgrep or for editors.
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    for number, line in enumerate(lines, start=1):
        if len(line) > MAX_LINE_CHARS:
            continue
        match = compiled.search(line)
        if match is not None:
            yield _hit(relative, number, line, match.start())
