"""A project summary built only from the index tables and the latest test run, and the CLAUDE.md made from it.

Nothing here reads the workspace's files: the summary is as fresh as the last index rebuild (``indexed_at``
says when), which keeps it cheap enough for a tool call. Every list is sorted, so the same index gives the same
summary and the same CLAUDE.md bytes.
"""

from __future__ import annotations

import logging
from pathlib import PurePosixPath
from typing import Any

from django.db.models import Count, Q, Sum

from workspace.claude_md import claude_md_render, claude_md_write_file, lint_command
from workspace.models import FileDependency, IndexedFile, ProjectSignal, SignalKind, Symbol, TestRun, Workspace
from workspace.selectors import workspace_info

logger = logging.getLogger(__name__)

__all__ = ["claude_md_render", "claude_md_write", "project_summary"]

MAX_INTERNAL_DEPENDENCIES = 10
MAX_EXTERNAL_DEPENDENCIES = 30
MAX_ENTRY_POINTS = 20
ENTRY_POINT_MAX_DEPTH = 3  # deeper matches are fixtures and examples far more often than entry points
_VENDORED = frozenset({"node_modules", "vendor", "third_party", "dist", "build", "target", "site-packages"})

# Conventional entry-point file names and what they mean. package.json is listed for its "main", "bin" and
# "scripts" fields, which this summary does not read (it uses the index only).
ENTRY_POINTS: dict[str, str] = {
    "manage.py": "Django management script",
    "__main__.py": "Python package entry (python -m)",
    "main.py": "Python main module",
    "app.py": "Python application module",
    "wsgi.py": "WSGI application",
    "asgi.py": "ASGI application",
    "main.go": "Go main package",
    "main.rs": "Rust binary crate root",
    "lib.rs": "Rust library crate root",
    "index.js": "JavaScript module entry",
    "index.ts": "TypeScript module entry",
    "main.js": "JavaScript entry",
    "main.ts": "TypeScript entry",
    "server.js": "Node.js server entry",
    "server.ts": "Node.js server entry",
    "config.ru": "Rack application",
    "Main.java": "Java main class",
    "package.json": 'npm manifest: its "main", "bin" and "scripts" name the entry points',
}
_RUST_ONLY_UNDER_SRC = frozenset({"main.rs", "lib.rs"})


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def _languages(workspace_id: int) -> tuple[dict[str, int], list[dict[str, Any]]]:
    files = IndexedFile.objects.filter(workspace_id=workspace_id)
    totals = files.aggregate(files=Count("id"), lines=Sum("line_count"))
    rows = (
        files.exclude(language="")
        .values("language")
        .annotate(files=Count("id"), lines=Sum("line_count"))
        .order_by("language")
    )
    known_lines = sum(int(row["lines"] or 0) for row in rows)
    known_files = sum(int(row["files"]) for row in rows)
    languages = [
        {
            "language": row["language"],
            "files": int(row["files"]),
            "lines": int(row["lines"] or 0),
            # Share of lines; an index of empty files falls back to the share of files.
            "percent": _percent(int(row["lines"] or 0), known_lines)
            if known_lines
            else _percent(int(row["files"]), known_files),
        }
        for row in rows
    ]
    languages.sort(key=lambda row: (-row["lines"], -row["files"], row["language"]))
    return {"files": int(totals["files"] or 0), "lines": int(totals["lines"] or 0)}, languages


def _signals(workspace_id: int, kind: str) -> list[ProjectSignal]:
    return list(
        ProjectSignal.objects.filter(workspace_id=workspace_id, kind=kind)
        .select_related("file")
        .order_by("name", "ecosystem", "version", "file__path")
    )


def _frameworks(workspace_id: int) -> list[dict[str, Any]]:
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for signal in _signals(workspace_id, SignalKind.FRAMEWORK):
        key = (signal.name.lower(), signal.ecosystem)
        row = seen.setdefault(key, {"name": signal.name, "ecosystem": signal.ecosystem, "version": ""})
        row["version"] = row["version"] or signal.version
    return sorted(seen.values(), key=lambda row: (row["name"].lower(), row["ecosystem"]))


def _lint(workspace_id: int) -> list[dict[str, Any]]:
    tools: dict[str, dict[str, Any]] = {}
    for signal in _signals(workspace_id, SignalKind.LINT):
        key = signal.name.strip().lower()
        row = tools.setdefault(key, {"name": signal.name.strip(), "configs": [], "command": lint_command(key)})
        if signal.file.path not in row["configs"]:
            row["configs"].append(signal.file.path)
    for row in tools.values():
        row["configs"].sort()
    return [tools[key] for key in sorted(tools)]


def _entry_points(workspace_id: int) -> list[dict[str, Any]]:
    query = Q()
    for name in ENTRY_POINTS:
        query |= Q(path=name) | Q(path__endswith="/" + name)
    found = []
    for path in IndexedFile.objects.filter(query, workspace_id=workspace_id).values_list("path", flat=True):
        parts = PurePosixPath(path).parts
        if len(parts) > ENTRY_POINT_MAX_DEPTH or _VENDORED.intersection(parts[:-1]):
            continue
        name = parts[-1]
        if name not in ENTRY_POINTS or (name in _RUST_ONLY_UNDER_SRC and (len(parts) < 2 or parts[-2] != "src")):
            continue
        found.append({"path": path, "reason": ENTRY_POINTS[name]})
    found.sort(key=lambda row: (row["path"].count("/"), row["path"]))
    return found[:MAX_ENTRY_POINTS]


def _dependencies(workspace_id: int) -> dict[str, Any]:
    internal = (
        FileDependency.objects.filter(workspace_id=workspace_id)
        .exclude(target_path="")
        .values("target_path")
        .annotate(imported_by=Count("file", distinct=True))
        .order_by("-imported_by", "target_path")[:MAX_INTERNAL_DEPENDENCIES]
    )
    external: dict[tuple[str, str], dict[str, Any]] = {}
    for signal in _signals(workspace_id, SignalKind.DEPENDENCY):
        key = (signal.ecosystem, signal.name)
        row = external.setdefault(
            key, {"name": signal.name, "ecosystem": signal.ecosystem, "version": signal.version, "dev": signal.dev}
        )
        row["dev"] = row["dev"] and signal.dev  # a runtime dependency anywhere makes it a runtime dependency
        row["version"] = row["version"] or signal.version
    ordered = sorted(external.values(), key=lambda row: (row["dev"], row["ecosystem"], row["name"].lower()))
    return {
        "internal": [{"path": row["target_path"], "imported_by": int(row["imported_by"])} for row in internal],
        "external": ordered[:MAX_EXTERNAL_DEPENDENCIES],
        "external_total": len(ordered),
    }


def _symbols(workspace_id: int) -> dict[str, Any]:
    rows = Symbol.objects.filter(workspace_id=workspace_id).values("kind").annotate(n=Count("id")).order_by("kind")
    by_kind = {row["kind"]: int(row["n"]) for row in rows}
    return {"total": sum(by_kind.values()), "by_kind": by_kind}


def _tests(workspace_id: int) -> dict[str, Any]:
    run = TestRun.objects.filter(workspace_id=workspace_id).order_by("-started_at", "-pk").first()
    if run is None:
        return {"latest": None, "note": "no test runs yet"}
    latest: dict[str, Any] = {
        "outcome": run.outcome,
        "command": run.command,
        "exit_code": run.exit_code,
        "passed": run.passed,
        "failed": run.failed,
        "skipped": run.skipped,
        "errors": run.errors,
        "coverage_percent": run.coverage_percent,
    }
    if run.coverage_percent is None:
        latest["coverage_note"] = "coverage unavailable (the run left no coverage report Lynkr could read)"
    else:
        latest["coverage_source"] = run.coverage_source
    return {"latest": latest, "note": ""}


def project_summary(*, workspace_id: int) -> dict[str, Any]:
    """What the index knows about a workspace, as JSON-ready data.

    Keys: workspace {id, name, indexed_at (ISO or None), test_command}, totals {files, lines, symbols},
    languages [{language, files, lines, percent}], frameworks [{name, ecosystem, version}],
    lint [{name, configs, command}], entry_points [{path, reason}],
    dependencies {internal [{path, imported_by}], external [{name, ecosystem, version, dev}], external_total},
    symbols {total, by_kind}, tests {latest (None or the run's outcome, counts, coverage), note}.
    """
    workspace = Workspace.objects.select_related("policy").get(pk=workspace_id)
    info = workspace_info(workspace)
    totals, languages = _languages(workspace_id)
    symbols = _symbols(workspace_id)
    return {
        "workspace": {
            "id": workspace.pk,
            "name": workspace.name,
            "indexed_at": workspace.indexed_at.isoformat() if workspace.indexed_at else None,
            "test_command": info.test_command,
        },
        "totals": {**totals, "symbols": symbols["total"]},
        "languages": languages,
        "frameworks": _frameworks(workspace_id),
        "lint": _lint(workspace_id),
        "entry_points": _entry_points(workspace_id),
        "dependencies": _dependencies(workspace_id),
        "symbols": symbols,
        "tests": _tests(workspace_id),
    }


def claude_md_write(*, workspace_id: int) -> dict[str, Any]:
    """Render CLAUDE.md from the index and write it at the root, unless a user's own CLAUDE.md is there.

    Returns {"written": True, "path", "bytes", "changed"} or {"written": False, "reason"}.
    """
    workspace = Workspace.objects.select_related("policy").get(pk=workspace_id)
    content = claude_md_render(project_summary(workspace_id=workspace_id))
    return claude_md_write_file(workspace_info(workspace).root, content)
