"""Mount planning shared by the two bubblewrap sandboxes (test runs, stdio MCP servers). Pure: paths only.

Both sandboxes start from a read-only view of ``/`` with a private, empty ``/tmp``, bind the workspace root
writable, and cover the gateway's secrets. Mount order matters to bwrap (a later mount covers an earlier one).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

SANDBOX_TMP = Path("/tmp")  # noqa: S108 - a private, empty tmpfs inside the sandbox


def contains(outer: Path, inner: Path) -> bool:
    return outer == inner or outer in inner.parents


def hidden_mounts(hidden: Sequence[Path], real_root: Path) -> tuple[list[str], list[str]]:
    """bwrap arguments covering ``hidden`` paths: those holding the root go before the root's bind (the default
    workspaces directory is inside the data directory), those inside it after. Missing paths are skipped: there is
    nothing to hide, and bwrap cannot create a mount point on the read-only root."""
    around: list[str] = []
    within: list[str] = []
    for path in hidden:
        real = Path(os.path.realpath(path))
        if not real.exists():
            continue
        mount = ["--ro-bind", "/dev/null", str(real)] if real.is_file() else ["--tmpfs", str(real)]
        (around if contains(real, real_root) else within).extend(mount)
    return around, within


def kept_under_tmp(argv: Sequence[str], path_env: str, real_root: Path) -> list[str]:
    """What under /tmp must stay visible, read-only, below the private /tmp (a CI checkout's venv and scripts,
    say): the program's directory and the PATH entries, a ``bin`` directory standing for its parent (the venv or
    prefix, whose ``lib`` the interpreter needs), and files or directories named by absolute arguments (a
    server script). The workspace root is bound anyway."""
    candidates: list[str] = []
    if argv and os.path.isabs(argv[0]):
        candidates.append(os.path.dirname(argv[0]))
    candidates += [entry for entry in path_env.split(os.pathsep) if os.path.isabs(entry)]
    candidates += [arg for arg in argv[1:] if os.path.isabs(arg) and os.path.exists(arg)]
    kept: list[str] = []
    for candidate in candidates:
        path = Path(os.path.normpath(candidate))
        if path.name == "bin":
            path = path.parent
        under_tmp = SANDBOX_TMP in path.parents and path.exists() and not contains(real_root, path)
        if under_tmp and not any(contains(Path(k), path) for k in kept):
            kept = [k for k in kept if not contains(path, Path(k))]
            kept.append(str(path))
    return [arg for path in kept for arg in ("--ro-bind", path, path)]
