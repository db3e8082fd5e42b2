"""fs_read, workspace_list and workspace_search: confinement, policy, .gitignore, bounds, both search engines."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.workspace.repos import write_files
from workspace.info import ToolContext
from workspace.tools import fs_search, registry
from workspace.tools.registry import ToolError, tool_call

TREE: dict[str, str | bytes] = {
    "README.md": "# Demo\nNEEDLE in the readme\n",
    "src/app.py": "import os\n\ndef main():\n    return 'NEEDLE'\n",
    "src/util.py": "def helper():\n    return 1\n",
    "src/unicode.txt": "é NEEDLE\n",
    ".gitignore": "build/\n*.log\n",
    "build/out.txt": "NEEDLE built\n",
    "app.log": "NEEDLE logged\n",
    "sub/.gitignore": "local.txt\n",
    "sub/local.txt": "NEEDLE local\n",
    "sub/kept.txt": "kept\n",
    ".env": "SECRET=NEEDLE\n",
    "config/.env.production": "SECRET=NEEDLE\n",
    "certs/key.pem": "-----BEGIN NEEDLE-----\n",
    "secrets/token.txt": "NEEDLE token\n",
    "blob.bin": b"NEEDLE\x00\x01\x02binary",
}


@pytest.fixture(autouse=True)
def _tools_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    import workspace.tools.fs  # noqa: F401 - registers the tools

    # Only the modules under test: the other tool modules are not needed to call these.
    monkeypatch.setattr(registry, "_loaded", True)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    write_files(root, TREE)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("NEEDLE outside\n")
    os.symlink(outside / "secret.txt", root / "escape_file")
    os.symlink(outside, root / "escape_dir")
    os.symlink(root / "src" / "app.py", root / "inner_link.py")
    return root


@pytest.fixture
def ctx(tree: Path, make_workspace: Callable[..., ToolContext]) -> ToolContext:
    return make_workspace(tree)


def call(name: str, ctx: ToolContext, **arguments: Any) -> dict[str, Any]:
    return tool_call(name=name, arguments=arguments, context=ctx)


# --- fs_read ---------------------------------------------------------------------------------------------------


def test_read_whole_file_and_window(ctx: ToolContext) -> None:
    whole = call("fs_read", ctx, path="src/app.py")
    assert whole == {
        "path": "src/app.py",
        "content": TREE["src/app.py"],
        "start_line": 1,
        "end_line": 4,
        "total_lines": 4,
        "truncated": False,
    }
    window = call("fs_read", ctx, path="./src//app.py", offset_line=3, limit_lines=1)
    assert window["content"] == "def main():\n"
    assert (window["start_line"], window["end_line"], window["total_lines"]) == (3, 3, 4)
    beyond = call("fs_read", ctx, path="src/app.py", offset_line=10)
    assert beyond["content"] == "" and beyond["total_lines"] == 4 and beyond["end_line"] == 9


def test_read_inner_symlink_is_allowed(ctx: ToolContext) -> None:
    assert call("fs_read", ctx, path="inner_link.py")["content"] == TREE["src/app.py"]


def test_read_output_is_bounded(ctx: ToolContext, tree: Path, settings: Any) -> None:
    settings.LYNKR_TOOL_OUTPUT_MAX_BYTES = 1024
    (tree / "long.txt").write_text("".join(f"{n:04d} {'x' * 45}\n" for n in range(100)))  # 50 bytes a line
    result = call("fs_read", ctx, path="long.txt")
    assert result["truncated"] is True
    assert len(result["content"].encode()) <= 1024
    assert result["content"].startswith("0000 ")
    assert result["end_line"] == 21  # 20 whole lines (1000 bytes) and the start of the 21st
    assert result["total_lines"] == 100
    # One line longer than the budget: cut inside it, never mid-character.
    (tree / "one.txt").write_text("é" * 2000)
    single = call("fs_read", ctx, path="one.txt")
    assert single["truncated"] is True and single["total_lines"] == 1
    assert "\ufffd" not in single["content"] and len(single["content"]) == 512


def test_read_large_file_needs_a_window(ctx: ToolContext, tree: Path, settings: Any) -> None:
    settings.LYNKR_INDEX_MAX_FILE_BYTES = 1024
    (tree / "big.txt").write_text("".join(f"line {n}\n" for n in range(1, 501)))
    with pytest.raises(ToolError, match="offset_line and limit_lines"):
        call("fs_read", ctx, path="big.txt")
    window = call("fs_read", ctx, path="big.txt", offset_line=400, limit_lines=2)
    assert window["content"] == "line 400\nline 401\n"
    assert window["total_lines"] == 500 and window["truncated"] is False


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("blob.bin", "binary"),
        ("src", "is a directory"),
        ("../outside/secret.txt", "'..' is not allowed"),
        ("src/../../outside/secret.txt", "'..' is not allowed"),
        ("/etc/passwd", "absolute paths are not allowed"),
        ("escape_file", "outside the workspace"),
        ("escape_dir/secret.txt", "outside the workspace"),
        (".env", "policy"),
        ("config/.env.production", "policy"),
        ("certs/key.pem", "policy"),
        (".git/config", "policy"),
        ("src/a\x00b.py", "NUL"),
        ("missing.txt", "does not exist"),
    ],
)
def test_read_refusals(ctx: ToolContext, tree: Path, path: str, message: str) -> None:
    (tree / ".git").mkdir(exist_ok=True)
    (tree / ".git" / "config").write_text("[core]\n")
    with pytest.raises(ToolError, match=re.escape(message)):
        call("fs_read", ctx, path=path)


def test_read_refuses_a_fifo_without_hanging(ctx: ToolContext, tree: Path) -> None:
    os.mkfifo(tree / "pipe")
    with pytest.raises(ToolError, match="not a regular file"):
        call("fs_read", ctx, path="pipe")


def test_read_policy_globs(tree: Path, make_workspace: Callable[..., ToolContext]) -> None:
    denying = make_workspace(tree, policy={"fs_deny_globs": ["secrets/*"]})
    with pytest.raises(ToolError, match="policy"):
        call("fs_read", denying, path="secrets/token.txt")
    assert call("fs_read", denying, path="README.md")["total_lines"] == 2
    allowing = make_workspace(tree, policy={"fs_allow_globs": ["src/**"]})
    assert call("fs_read", allowing, path="src/util.py")["total_lines"] == 2
    with pytest.raises(ToolError, match="policy"):
        call("fs_read", allowing, path="README.md")


def test_read_schema_is_strict(ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match="Additional properties"):
        call("fs_read", ctx, path="README.md", encoding="latin-1")
    with pytest.raises(ToolError, match="offset_line"):
        call("fs_read", ctx, path="README.md", offset_line=0)


# --- workspace_list --------------------------------------------------------------------------------------------


def _paths(result: dict[str, Any]) -> dict[str, str]:
    return {entry["path"]: entry["type"] for entry in result["entries"]}


def test_list_honours_gitignore_policy_and_symlinks(ctx: ToolContext) -> None:
    result = call("workspace_list", ctx)
    paths = _paths(result)
    assert result["truncated"] is False and result["path"] == ""
    assert {"README.md", "src", "src/app.py", "sub", "sub/kept.txt", "secrets/token.txt"} <= set(paths)
    assert paths["escape_dir"] == "symlink" and paths["escape_file"] == "symlink"
    assert not any(path.startswith("escape_dir/") for path in paths)  # never followed
    for absent in ("build", "build/out.txt", "app.log", "sub/local.txt", ".env", ".gitignore", "certs/key.pem"):
        assert absent not in paths
    sizes = {entry["path"]: entry.get("size") for entry in result["entries"]}
    assert sizes["src/app.py"] == len(TREE["src/app.py"])
    assert list(paths) == sorted(paths)  # depth-first, names sorted, so the listing reads as a tree


def test_list_depth_hidden_and_subdirectory(ctx: ToolContext, tree: Path) -> None:
    (tree / ".git").mkdir()
    (tree / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    shallow = _paths(call("workspace_list", ctx, depth=1))
    assert "src" in shallow and "src/app.py" not in shallow
    hidden = _paths(call("workspace_list", ctx, include_hidden=True))
    assert ".gitignore" in hidden and "sub/.gitignore" in hidden
    assert ".env" not in hidden and "config/.env.production" not in hidden
    assert not any(path == ".git" or path.startswith(".git/") for path in hidden)
    sub = call("workspace_list", ctx, path="sub")
    assert sub["path"] == "sub" and _paths(sub) == {"sub/kept.txt": "file"}  # the nested .gitignore applies


def test_list_policy_deny_glob_hides_directory(tree: Path, make_workspace: Callable[..., ToolContext]) -> None:
    ctx = make_workspace(tree, policy={"fs_deny_globs": ["secrets/**"]})
    paths = _paths(call("workspace_list", ctx))
    assert "secrets" not in paths and "secrets/token.txt" not in paths
    with pytest.raises(ToolError, match="policy"):
        call("workspace_list", ctx, path="secrets")


def test_list_refusals_and_cap(ctx: ToolContext, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ToolError, match="not a directory"):
        call("workspace_list", ctx, path="README.md")
    with pytest.raises(ToolError, match="outside the workspace"):
        call("workspace_list", ctx, path="escape_dir")
    with pytest.raises(ToolError, match=r"'\.\.' is not allowed"):
        call("workspace_list", ctx, path="..")
    with pytest.raises(ToolError, match="depth"):
        call("workspace_list", ctx, depth=6)
    import workspace.tools.fs as fs

    monkeypatch.setattr(fs, "MAX_LIST_ENTRIES", 3)
    capped = call("workspace_list", ctx)
    assert capped["truncated"] is True and len(capped["entries"]) == 3


# --- workspace_search ------------------------------------------------------------------------------------------

ENGINES = ["python", pytest.param("ripgrep", marks=pytest.mark.skipif(not shutil.which("rg"), reason="no rg"))]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "python":
        monkeypatch.setattr(fs_search.shutil, "which", lambda name: None)
    return str(request.param)


def _hits(result: dict[str, Any]) -> list[tuple[str, int, int]]:
    return sorted((hit["path"], hit["line"], hit["column"]) for hit in result["matches"])


def test_search_literal_stays_inside_root_and_policy(ctx: ToolContext, engine: str) -> None:
    result = call("workspace_search", ctx, pattern="NEEDLE")
    assert result["engine"] == engine and result["truncated"] is False
    # Not found: .env and .pem (policy), build/ and *.log (.gitignore), sub/local.txt (nested .gitignore),
    # escape_* (symlinks out of the root), blob.bin (binary), inner_link.py (a symlink is not followed).
    assert _hits(result) == [
        ("README.md", 2, 1),
        ("secrets/token.txt", 1, 1),
        ("src/app.py", 4, 13),
        ("src/unicode.txt", 1, 3),  # columns count characters, not bytes
    ]
    app = next(hit for hit in result["matches"] if hit["path"] == "src/app.py")
    assert app["text"] == "    return 'NEEDLE'"


def test_search_literal_is_not_a_regex(ctx: ToolContext, tree: Path, engine: str) -> None:
    (tree / "src" / "calc.py").write_text("x = a.b(1)\ny = aXb(2)\n")
    assert _hits(call("workspace_search", ctx, pattern="a.b(")) == [("src/calc.py", 1, 5)]


def test_search_regex_case_and_glob(ctx: ToolContext, engine: str) -> None:
    assert _hits(call("workspace_search", ctx, pattern=r"def \w+\(\)", regex=True)) == [
        ("src/app.py", 3, 1),
        ("src/util.py", 1, 1),
    ]
    assert call("workspace_search", ctx, pattern="needle", case_sensitive=True)["matches"] == []
    assert len(call("workspace_search", ctx, pattern="needle")["matches"]) == 4
    assert _hits(call("workspace_search", ctx, pattern="NEEDLE", path_glob="*.md")) == [("README.md", 2, 1)]
    assert _hits(call("workspace_search", ctx, pattern="NEEDLE", path_glob="src/*.py")) == [("src/app.py", 4, 13)]


def test_search_policy_deny_glob(tree: Path, make_workspace: Callable[..., ToolContext], engine: str) -> None:
    ctx = make_workspace(tree, policy={"fs_deny_globs": ["secrets/**"], "fs_allow_globs": ["src/**", "secrets/**"]})
    assert _hits(call("workspace_search", ctx, pattern="NEEDLE")) == [("src/app.py", 4, 13), ("src/unicode.txt", 1, 3)]


def test_search_max_results(ctx: ToolContext, tree: Path, engine: str) -> None:
    (tree / "many.txt").write_text("hit\n" * 10)
    capped = call("workspace_search", ctx, pattern="hit", path_glob="many.txt", max_results=3)
    assert capped["truncated"] is True and [hit["line"] for hit in capped["matches"]] == [1, 2, 3]
    exact = call("workspace_search", ctx, pattern="hit", path_glob="many.txt", max_results=10)
    assert exact["truncated"] is False and len(exact["matches"]) == 10


def test_search_refusals(ctx: ToolContext, engine: str) -> None:
    with pytest.raises(ToolError, match="invalid regular expression"):
        call("workspace_search", ctx, pattern="(unclosed", regex=True)
    with pytest.raises(ToolError, match="exclusions"):
        call("workspace_search", ctx, pattern="x", path_glob="!*.py")
    with pytest.raises(ToolError, match="NUL"):
        call("workspace_search", ctx, pattern="a\x00b")
    with pytest.raises(ToolError, match="max_results"):
        call("workspace_search", ctx, pattern="x", max_results=1001)


def test_search_python_engine_refuses_nested_repeats(ctx: ToolContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fs_search.shutil, "which", lambda name: None)
    with pytest.raises(ToolError, match="nests repetitions"):
        call("workspace_search", ctx, pattern="(a+)+$", regex=True)
    with pytest.raises(ToolError, match="nests repetitions"):
        call("workspace_search", ctx, pattern=r"(?:x|(\w*))*z", regex=True)
    assert call("workspace_search", ctx, pattern=r"(ab)?c+", regex=True)["engine"] == "python"


def test_search_python_engine_skips_overlong_lines(
    ctx: ToolContext, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fs_search.shutil, "which", lambda name: None)
    (tree / "min.js").write_text("x" * (fs_search.MAX_LINE_CHARS + 1) + "NEEDLE\nshort NEEDLE\n")
    assert _hits(call("workspace_search", ctx, pattern="NEEDLE", path_glob="*.js")) == [("min.js", 2, 7)]


@pytest.mark.skipif(not shutil.which("rg"), reason="no rg")
def test_search_falls_back_when_ripgrep_rejects_the_regex(ctx: ToolContext) -> None:
    # Look-ahead is valid Python but not in ripgrep's default engine: the Python engine answers instead.
    result = call("workspace_search", ctx, pattern=r"return (?='NEEDLE')", regex=True)
    assert result["engine"] == "python"
    assert _hits(result) == [("src/app.py", 4, 5)]
