"""Filesystem tools: read a file, list a directory, search the workspace. Read-only, confined to the root.

Every path goes through ``workspace.paths.resolve_inside`` (no '..', no absolute path, no symlink out of the root,
the policy's globs and the always-denied .env / *.pem / .git). Output is bounded by LYNKR_TOOL_OUTPUT_MAX_BYTES
and says ``truncated`` when it was cut.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import IO, Any

from django.conf import settings

from workspace.info import ToolContext
from workspace.paths import PathRefused, normalise_relative, resolve_inside
from workspace.tools.fs_search import SearchRefused, SearchRequest, search
from workspace.tools.fs_walk import directory_denied, walk
from workspace.tools.registry import ToolError, tool

BINARY_SNIFF_BYTES = 8192
MAX_LIST_ENTRIES = 1000
_COUNT_CHUNK = 1024 * 1024


def _real_root(ctx: ToolContext) -> Path:
    root = Path(os.path.realpath(ctx.workspace.root))
    if not root.is_dir():
        raise ToolError(f"the workspace root of {ctx.workspace.name!r} does not exist on the gateway host")
    return root


def _resolve(ctx: ToolContext, raw: str) -> tuple[Path, Path, str]:
    """(real root, real path, its '/'-separated path relative to the real root), or ToolError."""
    root = _real_root(ctx)
    try:
        real = resolve_inside(root, raw, policy=ctx.workspace.policy)
    except PathRefused as exc:
        raise ToolError(str(exc)) from None
    return root, real, real.relative_to(root).as_posix() if real != root else ""


# --- fs_read ---------------------------------------------------------------------------------------------------


def _read_line(handle: IO[bytes], cap: int) -> tuple[bytes, bool]:
    """The next line's first ``cap`` bytes and whether that is the whole line; the rest of a longer line is read
    and dropped, so one giant minified line never sits in memory."""
    head = handle.readline(cap)
    if len(head) < cap or head.endswith(b"\n"):
        return head, True
    while True:
        rest = handle.readline(_COUNT_CHUNK)
        if not rest or rest.endswith(b"\n"):
            return head, False


def _count_rest(handle: IO[bytes]) -> int:
    count, last = 0, b"\n"
    while chunk := handle.read(_COUNT_CHUNK):
        count += chunk.count(b"\n")
        last = chunk[-1:]
    return count + (0 if last == b"\n" else 1)


def _cut_utf8(data: bytes) -> bytes:
    """``data`` without a trailing partial UTF-8 sequence (a cut mid-character would decode to U+FFFD)."""
    end = len(data)
    back = 0
    while back < 4 and end - back > 0 and (data[end - back - 1] & 0xC0) == 0x80:
        back += 1
    if end - back > 0 and data[end - back - 1] >= 0xC0:
        lead = data[end - back - 1]
        needed = 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
        if back + 1 < needed:
            return data[: end - back - 1]
    return data


def _read_window(handle: IO[bytes], *, start: int, limit: int | None, budget: int) -> tuple[bytes, int, int, bool]:
    """(content, end_line, total_lines, truncated) for lines start..start+limit-1, at most ``budget`` bytes."""
    chunks: list[bytes] = []
    used, number, end_line, truncated = 0, 0, start - 1, False
    stop = start + limit - 1 if limit is not None else None
    while stop is None or number < stop:
        head, whole = _read_line(handle, budget + 1)
        if not head:
            break
        number += 1
        if number < start:
            continue
        if not whole or used + len(head) > budget:
            chunks.append(_cut_utf8(head[: budget - used]))
            end_line, truncated = number, True
            break
        chunks.append(head)
        used += len(head)
        end_line = number
    return b"".join(chunks), end_line, number + _count_rest(handle), truncated


@tool(
    "fs_read",
    "Read a text file of the workspace. Give offset_line (1-based) and limit_lines to read a window of a long "
    "file; the result says start_line, end_line, total_lines and whether the output was truncated.",
    {
        "type": "object",
        "properties": {
            "path": {"type": "string", "minLength": 1, "maxLength": 1000, "description": "Relative to the root."},
            "offset_line": {"type": "integer", "minimum": 1, "description": "First line to return (1-based)."},
            "limit_lines": {"type": "integer", "minimum": 1, "maximum": 100000, "description": "Lines to return."},
        },
        "required": ["path"],
        "additionalProperties": False,
    },
)
def fs_read(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _, real, _ = _resolve(ctx, args["path"])
    windowed = "offset_line" in args or "limit_lines" in args
    # O_NOFOLLOW: the path is already resolved, so a symlink here was swapped in after the check.
    # O_NONBLOCK: opening a FIFO must not hang the worker; it is refused below as not a regular file.
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(real, flags)
    except OSError as exc:
        raise ToolError(f"{args['path']!r} cannot be read: {exc.strerror}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ToolError(f"{args['path']!r} is a directory; use workspace_list to see what it holds")
        raise ToolError(f"{args['path']!r} is not a regular file")
    with os.fdopen(fd, "rb") as handle:
        if b"\x00" in handle.read(BINARY_SNIFF_BYTES):
            raise ToolError(f"{args['path']!r} is a binary file")
        max_bytes: int = settings.LYNKR_INDEX_MAX_FILE_BYTES
        if info.st_size > max_bytes and not windowed:
            raise ToolError(
                f"{args['path']!r} is {info.st_size} bytes, over the {max_bytes}-byte limit for a whole read; "
                "read a window of it with offset_line and limit_lines"
            )
        handle.seek(0)
        start = int(args.get("offset_line", 1))
        content, end_line, total, truncated = _read_window(
            handle, start=start, limit=args.get("limit_lines"), budget=settings.LYNKR_TOOL_OUTPUT_MAX_BYTES
        )
    return {
        "path": normalise_relative(args["path"]),
        "content": content.decode("utf-8", errors="replace"),
        "start_line": start,
        "end_line": end_line,
        "total_lines": total,
        "truncated": truncated,
    }


# --- workspace_list --------------------------------------------------------------------------------------------


@tool(
    "workspace_list",
    "List a directory of the workspace (files with their size, directories, symlinks), down to `depth` levels. "
    "Files ignored by .gitignore and paths the policy denies are not shown.",
    {
        "type": "object",
        "properties": {
            "path": {
                "type": "string",
                "maxLength": 1000,
                "description": "Directory relative to the root; default root.",
            },
            "depth": {"type": "integer", "minimum": 1, "maximum": 5, "default": 2},
            "include_hidden": {"type": "boolean", "default": False, "description": "Show dot-files and dot-dirs."},
        },
        "additionalProperties": False,
    },
)
def workspace_list(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    root, real, relative = _resolve(ctx, args.get("path", ""))
    if not real.is_dir():
        raise ToolError(f"{args.get('path')!r} is not a directory; use fs_read to read a file")
    if relative and directory_denied(ctx.workspace.policy, relative):
        raise ToolError(f"{args.get('path')!r} is not readable under this workspace's policy")
    budget: int = settings.LYNKR_TOOL_OUTPUT_MAX_BYTES
    entries: list[dict[str, Any]] = []
    used = 0
    truncated = False
    policy = ctx.workspace.policy
    for entry in walk(
        root,
        start=relative,
        max_depth=int(args.get("depth", 2)),
        include_hidden=bool(args.get("include_hidden")),
        policy=policy,
    ):
        item: dict[str, Any] = {"path": entry.relative, "type": entry.kind}
        if entry.kind == "file":
            item["size"] = entry.size
        used += len(entry.relative) + 40  # the JSON around a path, roughly
        if len(entries) == MAX_LIST_ENTRIES or used > budget:
            truncated = True
            break
        entries.append(item)
    return {"path": relative, "entries": entries, "truncated": truncated}


# --- workspace_search ------------------------------------------------------------------------------------------


@tool(
    "workspace_search",
    "Search the workspace's text files for a string (or a regular expression with regex=true). Returns the "
    "path, line, column and text of each matching line. path_glob limits the files, e.g. '*.py' or 'src/**/*.ts'.",
    {
        "type": "object",
        "properties": {
            "pattern": {"type": "string", "minLength": 1, "maxLength": 1000},
            "regex": {"type": "boolean", "default": False},
            "case_sensitive": {"type": "boolean", "default": False},
            "path_glob": {"type": "string", "minLength": 1, "maxLength": 300},
            "max_results": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
        },
        "required": ["pattern"],
        "additionalProperties": False,
    },
)
def workspace_search(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    root = _real_root(ctx)
    path_glob = args.get("path_glob", "")
    if "\x00" in args["pattern"] or "\x00" in path_glob:
        raise ToolError("pattern and path_glob cannot contain a NUL byte (binary files are not searched)")
    request = SearchRequest(
        pattern=args["pattern"],
        regex=bool(args.get("regex", False)),
        case_sensitive=bool(args.get("case_sensitive", False)),
        path_glob=path_glob,
        max_results=int(args.get("max_results", 100)),
        max_file_bytes=settings.LYNKR_INDEX_MAX_FILE_BYTES,
        policy=ctx.workspace.policy,
    )
    try:
        result = search(root, request)
    except SearchRefused as exc:
        raise ToolError(str(exc)) from None
    budget: int = settings.LYNKR_TOOL_OUTPUT_MAX_BYTES
    matches: list[dict[str, Any]] = []
    used = 0
    truncated = result.truncated
    for hit in result.hits:
        used += len(hit.path) + len(hit.text.encode("utf-8")) + 60
        if used > budget:
            truncated = True
            break
        matches.append({"path": hit.path, "line": hit.line, "column": hit.column, "text": hit.text})
    return {"matches": matches, "truncated": truncated, "engine": result.engine}
