"""The index service and its selectors on real git repositories."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.workspace.repos import commit, git, make_repo, write_files
from workspace import indexer
from workspace.index_selectors import (
    file_dependencies,
    file_dependents,
    index_status,
    symbol_definition,
    symbol_references,
    symbol_search,
)
from workspace.indexer import WorkspaceRootMissing, index_rebuild
from workspace.info import ToolContext
from workspace.jobs import JobCancelled
from workspace.models import FileDependency, IndexedFile, ProjectSignal, Symbol, SymbolReference

pytestmark = pytest.mark.django_db

FILES: dict[str, str | bytes] = {
    ".gitignore": "build/\n*.log\n",
    "README.md": "# Shop\n",
    "pyproject.toml": '[project]\nname = "shop"\ndependencies = ["django>=5"]\n\n[tool.ruff]\nline-length = 100\n',
    "package.json": '{"dependencies": {"react": "18.2.0"}, "devDependencies": {"vitest": "1.0.0"}}',
    "pkg/__init__.py": "",
    "pkg/mod.py": (
        "def helper(x):\n    return x * 2\n\n\n"
        "class Greeter:\n    def greet(self, name):\n        return helper(name)\n"
    ),
    "app/main.py": "from pkg.mod import helper\nfrom pkg import extra\n\n\ndef run():\n    return helper(3)\n",
    "other/mod2.py": "def helper():\n    pass\n\n\ndef helpers_list():\n    return [helper]\n",
    "web/src/util.ts": "export function formatDate(d: Date): string {\n  return d.toISOString();\n}\n",
    "web/src/app.ts": "import { formatDate } from './util';\n\nexport const render = () => formatDate(new Date());\n",
    "web/src/other.ts": "export function formatDate(): string {\n  return '';\n}\n",
    "go.mod": "module example.com/svc\n\ngo 1.22\n",
    "internal/store/store.go": "package store\n\nfunc Open() error {\n\treturn nil\n}\n",
    "internal/store/zz_extra.go": "package store\n\nfunc Close() {}\n",
    "legacy/store.go": "package legacy\n\nfunc Open() {}\n",
    "cmd/main.go": 'package main\n\nimport "example.com/svc/internal/store"\n\nfunc main() {\n\tstore.Open()\n}\n',
    "scripts/build.lua": "local function build(target)\n  return target\nend\n",
    "assets/logo.bin": b"\x89PNG\r\n\x1a\n\x00\x00\x00binary",
    "build/generated.py": "def generated():\n    pass\n",
    "debug.log": "noise\n",
}
INDEXED = sorted(path for path in FILES if path not in ("assets/logo.bin", "build/generated.py", "debug.log"))


@pytest.fixture
def repo(tmp_path: Path, make_workspace: Callable[..., ToolContext]) -> tuple[Path, int]:
    root = make_repo(tmp_path / "shop", FILES)
    ctx = make_workspace(root)
    return root, ctx.workspace.id


class CountingProgress:
    def __init__(self, cancel_after: int | None = None) -> None:
        self.updates: list[tuple[int, int, str]] = []
        self.checks = 0
        self.cancel_after = cancel_after

    def update(self, done: int, total: int, message: str = "") -> None:
        self.updates.append((done, total, message))

    def check_cancelled(self) -> None:
        self.checks += 1
        if self.cancel_after is not None and self.checks > self.cancel_after:
            raise JobCancelled("stop")


def paths_of(hits: list[Any]) -> list[str]:
    return [hit.path for hit in hits]


def test_indexes_a_multi_language_repository(repo: tuple[Path, int]) -> None:
    _, workspace_id = repo
    assert index_status(workspace_id=workspace_id).indexed_at is None
    progress = CountingProgress()
    summary = index_rebuild(workspace_id=workspace_id, progress=progress)

    assert sorted(IndexedFile.objects.filter(workspace_id=workspace_id).values_list("path", flat=True)) == INDEXED
    counts = (summary["files"], summary["parsed"], summary["unchanged"], summary["removed"])
    assert counts == (len(INDEXED), len(INDEXED), 0, 0)
    assert summary["parsers"] == {"tree-sitter": 11, "none": 5, "heuristic": 1}
    assert summary["languages"]["python"] == 4 and summary["languages"]["go"] == 4
    assert summary["symbols"] == Symbol.objects.filter(workspace_id=workspace_id).count() > 0
    assert summary["references"] == SymbolReference.objects.filter(workspace_id=workspace_id).count() > 0
    assert index_status(workspace_id=workspace_id).indexed_at is not None
    assert progress.updates[-1][:2] == (len(INDEXED), len(INDEXED))
    assert progress.checks >= len(INDEXED)

    main = IndexedFile.objects.get(workspace_id=workspace_id, path="app/main.py")
    assert (main.language, main.parser, main.line_count, main.size) == (
        "python",
        "tree-sitter",
        6,
        len(FILES["app/main.py"]),
    )
    greet = Symbol.objects.get(workspace_id=workspace_id, name="greet")
    assert (greet.kind, greet.line, greet.end_line, greet.container, greet.file.path) == (
        "method",
        6,
        7,
        "Greeter",
        "pkg/mod.py",
    )
    lua = IndexedFile.objects.get(workspace_id=workspace_id, path="scripts/build.lua")
    assert lua.parser == "heuristic"
    assert list(lua.symbols.values_list("name", "kind")) == [("build", "function")]

    signals = set(ProjectSignal.objects.filter(workspace_id=workspace_id).values_list("kind", "name", "file__path"))
    assert {
        ("framework", "django", "pyproject.toml"),
        ("framework", "react", "package.json"),
        ("framework", "vitest", "package.json"),
        ("lint", "ruff", "pyproject.toml"),
        ("manifest", "go", "go.mod"),
    } <= signals
    assert [(d.module, d.target_path) for d in file_dependencies(workspace_id=workspace_id, path="app/main.py")] == [
        ("pkg.mod", "pkg/mod.py"),
        ("pkg", "pkg/__init__.py"),
    ]


def test_incremental_rebuild_parses_only_what_changed(repo: tuple[Path, int]) -> None:
    root, workspace_id = repo
    index_rebuild(workspace_id=workspace_id)
    again = index_rebuild(workspace_id=workspace_id)
    assert (again["parsed"], again["unchanged"], again["removed"]) == (0, len(INDEXED), 0)

    (root / "pkg" / "mod.py").touch()  # a newer mtime alone is not a change: the hash decides
    commit(root, {"other/mod2.py": "def renamed():\n    pass\n"}, "refactor: rename")
    summary = index_rebuild(workspace_id=workspace_id)
    assert (summary["parsed"], summary["unchanged"], summary["removed"]) == (1, len(INDEXED) - 1, 0)
    assert paths_of(symbol_search(workspace_id=workspace_id, query="renamed")) == ["other/mod2.py"]
    assert "other/mod2.py" not in paths_of(symbol_search(workspace_id=workspace_id, query="helper"))
    assert SymbolReference.objects.filter(workspace_id=workspace_id, file__path="other/mod2.py").count() == 0

    full = index_rebuild(workspace_id=workspace_id, full=True)
    assert (full["parsed"], full["unchanged"]) == (len(INDEXED), 0)
    assert full["symbols"] == summary["symbols"]  # replaced, not duplicated


def test_removed_file_disappears_and_imports_are_resolved_again(repo: tuple[Path, int]) -> None:
    root, workspace_id = repo
    index_rebuild(workspace_id=workspace_id)
    assert "pkg/mod.py" in paths_of(symbol_search(workspace_id=workspace_id, query="helper"))

    git(root, "rm", "-q", "pkg/mod.py")
    write_files(root, {"pkg/extra.py": "VALUE = 1\n"})
    summary = index_rebuild(workspace_id=workspace_id)
    assert (summary["parsed"], summary["removed"]) == (1, 1)
    assert "pkg/mod.py" not in paths_of(symbol_search(workspace_id=workspace_id, query="helper"))
    assert not IndexedFile.objects.filter(workspace_id=workspace_id, path="pkg/mod.py").exists()
    assert not Symbol.objects.filter(workspace_id=workspace_id, file__path="pkg/mod.py").exists()
    # app/main.py did not change, yet its imports follow the files: one target gone, one appeared
    assert [(d.module, d.target_path) for d in file_dependencies(workspace_id=workspace_id, path="app/main.py")] == [
        ("pkg.mod", ""),
        ("pkg", "pkg/__init__.py"),
    ]
    assert file_dependents(workspace_id=workspace_id, path="pkg/mod.py") == []


def test_goto_definition_prefers_what_the_file_imports(repo: tuple[Path, int]) -> None:
    _, workspace_id = repo
    index_rebuild(workspace_id=workspace_id)
    # without a from_path the decoy in other/ sorts first; from app/main.py the imported module wins
    assert paths_of(symbol_definition(workspace_id=workspace_id, name="helper"))[0] == "other/mod2.py"
    assert paths_of(symbol_definition(workspace_id=workspace_id, name="helper", from_path="app/main.py")) == [
        "pkg/mod.py",
        "other/mod2.py",
    ]
    # the same file comes before unrelated files
    assert paths_of(symbol_definition(workspace_id=workspace_id, name="helper", from_path="other/mod2.py"))[0] == (
        "other/mod2.py"
    )
    # TypeScript: './util' resolved to web/src/util.ts
    assert paths_of(symbol_definition(workspace_id=workspace_id, name="formatDate"))[0] == "web/src/other.ts"
    assert paths_of(symbol_definition(workspace_id=workspace_id, name="formatDate", from_path="web/src/app.ts"))[0] == (
        "web/src/util.ts"
    )
    # Go: an import names a package directory; every file in it counts as imported
    assert paths_of(symbol_definition(workspace_id=workspace_id, name="Open"))[0] == "internal/store/store.go"
    assert paths_of(symbol_definition(workspace_id=workspace_id, name="Open", from_path="cmd/main.go"))[0] == (
        "internal/store/store.go"
    )
    assert file_dependents(workspace_id=workspace_id, path="internal/store/zz_extra.go") == ["cmd/main.go"]
    assert file_dependents(workspace_id=workspace_id, path="pkg/mod.py") == ["app/main.py"]
    assert file_dependents(workspace_id=workspace_id, path="web/src/util.ts") == ["web/src/app.ts"]
    # qualified names narrow to the container
    [greet] = symbol_definition(workspace_id=workspace_id, name="Greeter.greet")
    assert (greet.path, greet.line, greet.container) == ("pkg/mod.py", 6, "Greeter")


def test_symbol_search_ranks_exact_then_prefix_then_substring(repo: tuple[Path, int]) -> None:
    _, workspace_id = repo
    index_rebuild(workspace_id=workspace_id)
    hits = symbol_search(workspace_id=workspace_id, query="helper")
    assert [(h.name, h.path) for h in hits] == [
        ("helper", "other/mod2.py"),
        ("helper", "pkg/mod.py"),
        ("helpers_list", "other/mod2.py"),
    ]
    assert [h.name for h in symbol_search(workspace_id=workspace_id, query="HELPER", limit=2)] == ["helper", "helper"]
    assert [h.name for h in symbol_search(workspace_id=workspace_id, query="list")] == ["helpers_list"]
    assert [h.name for h in symbol_search(workspace_id=workspace_id, query="greet", kind="class")] == ["Greeter"]
    assert [h.kind for h in symbol_search(workspace_id=workspace_id, query="Greeter.greet")] == ["method"]
    assert symbol_search(workspace_id=workspace_id, query="nothing_like_this") == []


def test_references_by_name(repo: tuple[Path, int]) -> None:
    _, workspace_id = repo
    index_rebuild(workspace_id=workspace_id)
    found = [(r.path, r.line, r.kind) for r in symbol_references(workspace_id=workspace_id, name="helper")]
    assert found == [("app/main.py", 1, "import"), ("app/main.py", 6, "call"), ("pkg/mod.py", 7, "call")]
    assert len(symbol_references(workspace_id=workspace_id, name="Greeter.helper", limit=1)) == 1


def test_changed_manifest_replaces_its_signals(repo: tuple[Path, int]) -> None:
    root, workspace_id = repo
    index_rebuild(workspace_id=workspace_id)
    commit(root, {"package.json": '{"dependencies": {"vue": "3.4.0"}}'}, "chore: switch to vue")
    index_rebuild(workspace_id=workspace_id)
    frameworks = set(
        ProjectSignal.objects.filter(workspace_id=workspace_id, kind="framework").values_list("name", flat=True)
    )
    assert frameworks == {"django", "vue"}


def test_ignore_globs_of_the_workspace(tmp_path: Path, make_workspace: Callable[..., ToolContext]) -> None:
    root = make_repo(tmp_path / "r", {"src/a.py": "def a(): pass\n", "vendor/lib.py": "def b(): pass\n"})
    ctx = make_workspace(root, ignore_globs=["vendor/"])
    summary = index_rebuild(workspace_id=ctx.workspace.id)
    assert summary["files"] == 1
    assert [h.name for h in symbol_search(workspace_id=ctx.workspace.id, query="b")] == []


def test_cancel_stops_between_files_and_keeps_written_batches(
    repo: tuple[Path, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, workspace_id = repo
    monkeypatch.setattr(indexer, "BATCH_FILES", 3)
    with pytest.raises(JobCancelled):
        index_rebuild(workspace_id=workspace_id, progress=CountingProgress(cancel_after=7))
    written = IndexedFile.objects.filter(workspace_id=workspace_id)
    # two whole batches of three (in crawl order); the third batch was cancelled before its write
    assert sorted(written.values_list("path", flat=True)) == [
        ".gitignore",
        "README.md",
        "app/main.py",
        "cmd/main.go",
        "go.mod",
        "internal/store/store.go",
    ]
    assert index_status(workspace_id=workspace_id).indexed_at is None
    # each written file came with all its rows: a batch is one transaction
    assert set(Symbol.objects.filter(workspace_id=workspace_id).values_list("file__path", "name")) == {
        ("app/main.py", "run"),
        ("cmd/main.go", "main"),
        ("internal/store/store.go", "Open"),
    }
    assert FileDependency.objects.filter(workspace_id=workspace_id, file__path="app/main.py").count() == 2
    assert ProjectSignal.objects.filter(workspace_id=workspace_id, file__path="go.mod", kind="manifest").exists()

    summary = index_rebuild(workspace_id=workspace_id)
    assert (summary["parsed"], summary["unchanged"]) == (len(INDEXED) - 6, 6)


def test_missing_root_is_a_clear_error(tmp_path: Path, make_workspace: Callable[..., ToolContext]) -> None:
    root = make_repo(tmp_path / "gone", {"a.py": ""})
    ctx = make_workspace(root)
    shutil.rmtree(root)
    with pytest.raises(WorkspaceRootMissing, match="does not exist"):
        index_rebuild(workspace_id=ctx.workspace.id)


def test_dependencies_are_rows_per_file(repo: tuple[Path, int]) -> None:
    _, workspace_id = repo
    index_rebuild(workspace_id=workspace_id)
    rows = set(
        FileDependency.objects.filter(workspace_id=workspace_id).values_list("file__path", "module", "target_path")
    )
    assert {
        ("web/src/app.ts", "./util", "web/src/util.ts"),
        ("cmd/main.go", "example.com/svc/internal/store", "internal/store/store.go"),
    } <= rows
