"""Confining paths to a workspace root: no '..', no absolute paths, no symlink escape, policy globs applied."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from workspace.info import PolicyInfo


class PathRefused(ValueError):
    """The path is outside the workspace or refused by policy; the message is safe to show the model."""


def normalise_relative(raw: str) -> str:
    """A clean '/'-separated relative path, or PathRefused. '' and '.' mean the root."""
    if "\x00" in raw:
        raise PathRefused("path contains a NUL byte")
    text = raw.replace("\\", "/").strip()
    if text in ("", "."):
        return ""
    pure = PurePosixPath(text)
    if pure.is_absolute() or (len(text) > 1 and text[1] == ":"):
        raise PathRefused(f"{raw!r}: absolute paths are not allowed; give a path relative to the workspace root")
    parts = [part for part in pure.parts if part not in ("", ".")]
    if ".." in parts:
        raise PathRefused(f"{raw!r}: '..' is not allowed")
    return "/".join(parts)


def resolve_inside(root: Path, raw: str, *, policy: PolicyInfo | None = None, must_exist: bool = True) -> Path:
    """The real path of ``raw`` under ``root``, refusing anything that resolves outside (symlinks included)."""
    relative = normalise_relative(raw)
    real_root = Path(os.path.realpath(root))
    candidate = Path(os.path.realpath(real_root / relative)) if relative else real_root
    if candidate != real_root and real_root not in candidate.parents:
        raise PathRefused(f"{raw!r} resolves outside the workspace")
    if policy is not None and relative:
        inside = candidate.relative_to(real_root).as_posix()
        if not (policy.allows_path(relative) and policy.allows_path(inside)):
            raise PathRefused(f"{raw!r} is not readable under this workspace's policy")
    if must_exist and not candidate.exists():
        raise PathRefused(f"{raw!r} does not exist")
    return candidate
