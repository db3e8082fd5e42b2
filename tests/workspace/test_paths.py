"""Path confinement: no '..', no absolute paths, no symlink escape, policy globs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from workspace.info import PolicyInfo
from workspace.paths import PathRefused, normalise_relative, resolve_inside


@pytest.mark.parametrize(("raw", "clean"), [("", ""), (".", ""), ("a/b", "a/b"), ("./a//b/", "a/b"), ("a\\b", "a/b")])
def test_normalise(raw: str, clean: str) -> None:
    assert normalise_relative(raw) == clean


@pytest.mark.parametrize("raw", ["../x", "a/../../x", "/etc/passwd", "C:/Windows", "a/\x00b", "..\\x"])
def test_normalise_refuses(raw: str) -> None:
    with pytest.raises(PathRefused):
        normalise_relative(raw)


def test_symlink_escape_is_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("s")
    os.symlink(outside / "secret.txt", root / "link.txt")
    os.symlink(outside, root / "linkdir")
    (root / "ok.txt").write_text("ok")
    os.symlink(root / "ok.txt", root / "inner-link.txt")
    assert resolve_inside(root, "ok.txt") == (root / "ok.txt").resolve()
    assert resolve_inside(root, "inner-link.txt") == (root / "ok.txt").resolve()
    for raw in ("link.txt", "linkdir/secret.txt", "linkdir"):
        with pytest.raises(PathRefused, match="outside"):
            resolve_inside(root, raw)


def test_policy_globs_apply_to_the_real_path_too(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "k.txt").write_text("k")
    os.symlink(tmp_path / "secrets" / "k.txt", tmp_path / "innocent.txt")
    policy = PolicyInfo(fs_deny_globs=("secrets/**",))
    with pytest.raises(PathRefused, match="policy"):
        resolve_inside(tmp_path, "secrets/k.txt", policy=policy)
    with pytest.raises(PathRefused, match="policy"):
        resolve_inside(tmp_path, "innocent.txt", policy=policy)
    with pytest.raises(PathRefused, match="does not exist"):
        resolve_inside(tmp_path, "missing.txt")
    assert resolve_inside(tmp_path, "new.txt", must_exist=False) == tmp_path.resolve() / "new.txt"
