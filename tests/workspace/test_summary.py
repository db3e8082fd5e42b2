"""project_summary from index rows, the CLAUDE.md renderer and the careful CLAUDE.md writer."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from workspace.claude_md import MARKER, claude_md_render, lint_command
from workspace.info import ToolContext
from workspace.models import (
    FileDependency,
    IndexedFile,
    ProjectSignal,
    SignalKind,
    Symbol,
    TestRun,
    Workspace,
)
from workspace.models import TestOutcome as Outcome
from workspace.summary import claude_md_write, project_summary

INDEXED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _file(workspace_id: int, path: str, language: str, lines: int) -> IndexedFile:
    return IndexedFile.objects.create(
        workspace_id=workspace_id, path=path, language=language, content_hash="h", size=lines * 10, line_count=lines
    )


def fill_index(workspace_id: int) -> None:
    """A small Django project with a bit of JavaScript, as the indexer would record it."""
    Workspace.objects.filter(pk=workspace_id).update(indexed_at=INDEXED_AT)
    files = {
        path: _file(workspace_id, path, language, lines)
        for path, language, lines in [
            ("manage.py", "python", 20),
            ("app/models.py", "python", 300),
            ("app/views.py", "python", 200),
            ("app/utils.py", "python", 80),
            ("web/index.js", "javascript", 100),
            ("package.json", "json", 30),
            ("pyproject.toml", "toml", 50),
            ("ruff.toml", "toml", 10),
            ("LICENSE", "", 20),
            ("node_modules/x/index.js", "javascript", 5),
            ("deep/a/b/c/main.go", "go", 5),
            ("src/main.rs", "rust", 10),
            ("lib.rs", "rust", 10),
        ]
    }
    for name, kind in [("Article", "class"), ("Author", "class"), ("index", "function"), ("render", "function")]:
        Symbol.objects.create(workspace_id=workspace_id, file=files["app/models.py"], name=name, kind=kind, line=1)
    Symbol.objects.create(
        workspace_id=workspace_id, file=files["app/views.py"], name="VERSION", kind="constant", line=1
    )
    for source, target in [
        ("app/views.py", "app/models.py"),
        ("app/utils.py", "app/models.py"),
        ("manage.py", "app/models.py"),
        ("app/views.py", "app/utils.py"),
        ("app/views.py", ""),  # an external import
    ]:
        FileDependency.objects.create(
            workspace_id=workspace_id, file=files[source], module=target or "django.http", target_path=target
        )
    # The same import twice from one file counts once.
    FileDependency.objects.create(
        workspace_id=workspace_id, file=files["app/views.py"], module="app.models", target_path="app/models.py"
    )
    signals = [
        ("pyproject.toml", SignalKind.FRAMEWORK, "pypi", "Django", "5.2", False),
        ("package.json", SignalKind.FRAMEWORK, "npm", "react", "18.2.0", False),
        ("pyproject.toml", SignalKind.DEPENDENCY, "pypi", "Django", "5.2", False),
        ("pyproject.toml", SignalKind.DEPENDENCY, "pypi", "pytest", "8", True),
        ("package.json", SignalKind.DEPENDENCY, "npm", "react", "18.2.0", False),
        ("package.json", SignalKind.DEPENDENCY, "npm", "eslint", "9", True),
        ("pyproject.toml", SignalKind.LINT, "", "ruff", "", False),
        ("ruff.toml", SignalKind.LINT, "", "ruff", "", False),
        ("package.json", SignalKind.LINT, "", "eslint", "", False),
        ("pyproject.toml", SignalKind.LINT, "", "mypy", "", False),
    ]
    for path, kind, ecosystem, name, version, dev in signals:
        ProjectSignal.objects.create(
            workspace_id=workspace_id,
            file=files[path],
            kind=kind,
            ecosystem=ecosystem,
            name=name,
            version=version,
            dev=dev,
        )


def add_run(workspace_id: int, *, minutes: int, coverage: float | None, outcome: str = Outcome.PASSED) -> None:
    TestRun.objects.create(
        workspace_id=workspace_id,
        command="pytest -q",
        outcome=outcome,
        exit_code=0 if outcome == Outcome.PASSED else 1,
        passed=10,
        failed=0 if outcome == Outcome.PASSED else 2,
        skipped=1,
        errors=0,
        coverage_percent=coverage,
        coverage_source="coverage.xml" if coverage is not None else "",
        started_at=INDEXED_AT + timedelta(minutes=minutes),
    )


@pytest.fixture
def ctx(tmp_path: Path, make_workspace: Callable[..., ToolContext]) -> ToolContext:
    root = tmp_path / "repo"
    root.mkdir()
    ctx = make_workspace(root, name="demo", test_command="pytest -q")
    fill_index(ctx.workspace.id)
    return ctx


def test_summary_from_the_index(ctx: ToolContext) -> None:
    add_run(ctx.workspace.id, minutes=1, coverage=None, outcome=Outcome.FAILED)
    add_run(ctx.workspace.id, minutes=5, coverage=87.25)
    summary = project_summary(workspace_id=ctx.workspace.id)
    assert summary["workspace"] == {
        "id": ctx.workspace.id,
        "name": "demo",
        "indexed_at": INDEXED_AT.isoformat(),
        "test_command": "pytest -q",
    }
    assert summary["totals"] == {"files": 13, "lines": 840, "symbols": 5}
    languages = {row["language"]: row for row in summary["languages"]}
    assert [row["language"] for row in summary["languages"]] == [
        "python", "javascript", "toml", "json", "rust", "go",
    ]  # fmt: skip
    assert languages["python"] == {"language": "python", "files": 4, "lines": 600, "percent": 73.2}  # of 820
    assert "" not in languages  # LICENSE has no language
    assert summary["frameworks"] == [
        {"name": "Django", "ecosystem": "pypi", "version": "5.2"},
        {"name": "react", "ecosystem": "npm", "version": "18.2.0"},
    ]
    assert summary["lint"] == [
        {"name": "eslint", "configs": ["package.json"], "command": "npx eslint ."},
        {"name": "mypy", "configs": ["pyproject.toml"], "command": "mypy ."},
        {"name": "ruff", "configs": ["pyproject.toml", "ruff.toml"], "command": lint_command("ruff")},
    ]
    assert summary["entry_points"] == [
        {"path": "manage.py", "reason": "Django management script"},
        {"path": "package.json", "reason": 'npm manifest: its "main", "bin" and "scripts" name the entry points'},
        {"path": "src/main.rs", "reason": "Rust binary crate root"},
        {"path": "web/index.js", "reason": "JavaScript module entry"},
    ]  # not node_modules/, not a main.go five levels down, not a lib.rs outside src/
    assert summary["dependencies"]["internal"] == [
        {"path": "app/models.py", "imported_by": 3},
        {"path": "app/utils.py", "imported_by": 1},
    ]
    assert [(row["name"], row["dev"]) for row in summary["dependencies"]["external"]] == [
        ("react", False), ("Django", False), ("eslint", True), ("pytest", True),
    ]  # fmt: skip
    assert summary["symbols"] == {"total": 5, "by_kind": {"class": 2, "constant": 1, "function": 2}}
    latest = summary["tests"]["latest"]
    assert latest["outcome"] == "passed" and latest["coverage_percent"] == 87.25
    assert (latest["passed"], latest["failed"], latest["skipped"], latest["errors"]) == (10, 0, 1, 0)
    assert "coverage_note" not in latest


def test_summary_without_coverage_and_without_runs(ctx: ToolContext) -> None:
    none_yet = project_summary(workspace_id=ctx.workspace.id)["tests"]
    assert none_yet == {"latest": None, "note": "no test runs yet"}
    assert "Latest results: no test runs yet." in claude_md_render(project_summary(workspace_id=ctx.workspace.id))
    add_run(ctx.workspace.id, minutes=1, coverage=None, outcome=Outcome.FAILED)
    latest = project_summary(workspace_id=ctx.workspace.id)["tests"]["latest"]
    assert latest["outcome"] == "failed" and latest["coverage_percent"] is None
    assert latest["coverage_note"].startswith("coverage unavailable")
    rendered = claude_md_render(project_summary(workspace_id=ctx.workspace.id))
    assert (
        "- Coverage: coverage unavailable" in rendered
        and "- Counts: 10 passed, 2 failed, 1 skipped, 0 errors" in rendered
    )


def test_summary_of_an_empty_index(tmp_path: Path, make_workspace: Callable[..., ToolContext]) -> None:
    ctx = make_workspace(tmp_path)
    summary = project_summary(workspace_id=ctx.workspace.id)
    assert summary["workspace"]["indexed_at"] is None
    assert summary["totals"] == {"files": 0, "lines": 0, "symbols": 0}
    assert summary["languages"] == [] and summary["entry_points"] == []
    assert "The index is empty" in claude_md_render(summary)


def test_render_sections_and_determinism(ctx: ToolContext) -> None:
    add_run(ctx.workspace.id, minutes=5, coverage=87.25)
    summary = project_summary(workspace_id=ctx.workspace.id)
    text = claude_md_render(summary)
    assert text.splitlines()[0] == MARKER
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == [
        "## Project overview",
        "## Frameworks",
        "## Lint and style",
        "## Key files / entry points",
        "## Most-depended-on modules",
        "## Tests",
    ]
    assert "| python | 4 | 600 | 73.2% |" in text
    assert "- Django 5.2 (pypi)" in text
    assert "- eslint (configured in `package.json`): run `npx eslint .`" in text
    assert "- `manage.py`: Django management script" in text
    assert "- `app/models.py`: imported by 3 files" in text
    assert "External packages: react, Django, eslint (dev), pytest (dev)." in text
    assert "Run the tests with `pytest -q`." in text and "- Coverage: 87.2%" in text
    assert INDEXED_AT.isoformat() not in text  # a reindex alone must not change the file
    assert claude_md_render(project_summary(workspace_id=ctx.workspace.id)) == text


# --- claude_md_write -------------------------------------------------------------------------------------------


def test_write_when_absent_then_rewrite_ours(ctx: ToolContext) -> None:
    target = ctx.workspace.root / "CLAUDE.md"
    first = claude_md_write(workspace_id=ctx.workspace.id)
    assert first == {"written": True, "path": "CLAUDE.md", "bytes": len(target.read_bytes()), "changed": True}
    original = target.read_bytes()
    assert original.decode().startswith(MARKER + "\n")
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)
    again = claude_md_write(workspace_id=ctx.workspace.id)
    assert again["written"] is True and again["changed"] is False
    assert target.read_bytes() == original  # same index, same bytes
    # Our file, edited: rewritten from the index.
    target.write_text(MARKER + "\nsomeone's edit below our marker\n")
    add_run(ctx.workspace.id, minutes=5, coverage=50.0)
    third = claude_md_write(workspace_id=ctx.workspace.id)
    assert third["written"] is True and third["changed"] is True
    assert "- Coverage: 50.0%" in target.read_text() and "someone's edit" not in target.read_text()
    assert [name for name in os.listdir(ctx.workspace.root) if name.endswith(".tmp")] == []


def test_never_over_a_users_file(ctx: ToolContext) -> None:
    target = ctx.workspace.root / "CLAUDE.md"
    target.write_text("# My notes\n" + MARKER + "\n")  # the marker, but not on the first line
    result = claude_md_write(workspace_id=ctx.workspace.id)
    assert result == {"written": False, "reason": "CLAUDE.md exists and was not generated by Lynkr"}
    assert target.read_text() == "# My notes\n" + MARKER + "\n"


def test_never_through_a_symlink(ctx: ToolContext, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.md"
    elsewhere.write_text(MARKER + "\n")  # even a file that looks like ours
    os.symlink(elsewhere, ctx.workspace.root / "CLAUDE.md")
    result = claude_md_write(workspace_id=ctx.workspace.id)
    assert result["written"] is False and "symlink" in result["reason"]
    assert elsewhere.read_text() == MARKER + "\n"
    assert os.path.islink(ctx.workspace.root / "CLAUDE.md")


def test_not_over_a_directory(ctx: ToolContext) -> None:
    (ctx.workspace.root / "CLAUDE.md").mkdir()
    assert claude_md_write(workspace_id=ctx.workspace.id)["written"] is False


def test_render_is_pure_and_escapes() -> None:
    summary = {
        "workspace": {"name": "x", "test_command": ""},
        "totals": {"files": 1, "lines": 1, "symbols": 0},
        "languages": [{"language": "a|b", "files": 1, "lines": 1, "percent": 100.0}],
        "entry_points": [{"path": "we`ird.py", "reason": "r"}],
        "tests": {"latest": None, "note": "no test runs yet"},
    }
    text = claude_md_render(summary)
    assert "| a\\|b | 1 | 1 | 100.0% |" in text
    assert "- `we'ird.py`: r" in text
    assert "No test command is configured." in text
    assert "None detected." in text and "No lint or formatter configuration detected." in text
