"""Mount planning for the bubblewrap sandboxes: what stays visible below the private /tmp, what is hidden."""

from __future__ import annotations

from pathlib import Path

from workspace.bwrap import hidden_mounts, kept_under_tmp


def test_toolchains_and_named_scripts_under_tmp_stay_visible(tmp_path: Path) -> None:
    venv = tmp_path / "checkout" / ".venv"
    (venv / "bin").mkdir(parents=True)
    script = tmp_path / "checkout" / "tests" / "server.py"
    script.parent.mkdir(parents=True)
    script.write_text("")
    root = tmp_path / "ws"
    root.mkdir()
    args = kept_under_tmp(
        [str(venv / "bin" / "python"), str(script), "--flag", str(tmp_path / "missing"), str(root / "x")],
        f"{venv / 'bin'}:/usr/bin:{root}",
        root,
    )
    pairs = [tuple(args[i + 1 : i + 3]) for i in range(0, len(args), 3)]
    assert args[0::3] == ["--ro-bind"] * len(pairs)
    assert sorted(p[0] for p in pairs) == sorted([str(venv), str(script)])
    assert kept_under_tmp(["/usr/bin/python3", "/etc/hosts"], "/usr/bin", root) == []  # outside /tmp: already there


def test_a_wider_path_replaces_the_narrower_ones(tmp_path: Path) -> None:
    outer = tmp_path / "tools"
    (outer / "bin").mkdir(parents=True)
    (outer / "lib" / "x").mkdir(parents=True)
    args = kept_under_tmp([str(outer / "lib" / "x" / "run"), str(outer / "lib" / "x")], f"{outer}/bin", tmp_path / "ws")
    assert args == ["--ro-bind", str(outer), str(outer)]


def test_hidden_paths_around_and_inside_the_root(tmp_path: Path) -> None:
    data = tmp_path / "data"
    root = data / "workspaces" / "ws"
    (root / "secrets").mkdir(parents=True)
    key = tmp_path / "key.pem"
    key.write_text("k")
    around, within = hidden_mounts([data, root / "secrets", key, tmp_path / "absent"], root.resolve())
    assert around == ["--tmpfs", str(data.resolve())]
    assert within == ["--tmpfs", str((root / "secrets").resolve()), "--ro-bind", "/dev/null", str(key.resolve())]
