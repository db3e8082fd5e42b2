"""Reads of the index: symbol search, references, goto definition, the dependency graph of a file."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.db.models.functions import Length

from workspace.models import FileDependency, IndexedFile, Symbol, SymbolReference, Workspace

# Goto definition prefers the declaring forms over assignments when several definitions rank alike.
_KIND_ORDER = {"class": 0, "interface": 0, "struct": 0, "enum": 0, "trait": 0, "type": 1, "function": 1, "method": 1}
_QUALIFIER = re.compile(r"\.|::|#")
_SYMBOL_FIELDS = ("id", "name", "kind", "line", "column", "end_line", "container", "file__path", "file__language")


@dataclass(frozen=True, slots=True)
class SymbolHit:
    name: str
    kind: str
    path: str
    line: int
    column: int
    end_line: int
    container: str
    language: str

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "path": self.path, "line": self.line}
        out.update(end_line=self.end_line, column=self.column)
        if self.container:
            out["container"] = self.container
        return out


@dataclass(frozen=True, slots=True)
class ReferenceHit:
    name: str
    kind: str
    path: str
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class DependencyHit:
    module: str
    target_path: str


@dataclass(frozen=True, slots=True)
class IndexStatus:
    indexed_at: datetime | None
    files: int


def index_status(*, workspace_id: int) -> IndexStatus:
    indexed_at = Workspace.objects.values_list("indexed_at", flat=True).get(pk=workspace_id)
    return IndexStatus(indexed_at, IndexedFile.objects.filter(workspace_id=workspace_id).count())


def _split_qualified(query: str) -> tuple[str, str]:
    """'Model.save' / 'Point::new' / 'Cart#add' -> ('Model', 'save'); 'save' -> ('', 'save')."""
    parts = [part for part in _QUALIFIER.split(query.strip()) if part]
    if len(parts) < 2:
        return "", query.strip()
    return parts[-2], parts[-1]


def _hit(row: dict[str, Any]) -> SymbolHit:
    return SymbolHit(
        name=row["name"],
        kind=row["kind"],
        path=row["file__path"],
        line=row["line"],
        column=row["column"],
        end_line=row["end_line"],
        container=row["container"],
        language=row["file__language"],
    )


def symbol_search(*, workspace_id: int, query: str, kind: str | None = None, limit: int = 50) -> list[SymbolHit]:
    """Definitions by name: exact matches first, then case-insensitive exact, prefix, then substring matches.

    A qualified query ('Model.save', 'Point::new') matches the container too, falling back to the bare name.
    """
    container, name = _split_qualified(query)
    if not name:
        return []
    base = Symbol.objects.filter(workspace_id=workspace_id)
    if kind:
        base = base.filter(kind=kind)
    if container:
        hits = _ranked(base.filter(container__iexact=container), name, limit)
        if hits:
            return hits
    return _ranked(base, name, limit)


def _ranked(base: QuerySet[Symbol], name: str, limit: int) -> list[SymbolHit]:
    tiers: list[tuple[Q, tuple[Any, ...]]] = [
        (Q(name=name), ("file__path", "line")),
        (Q(name__iexact=name), ("file__path", "line")),
        (Q(name__istartswith=name), (Length("name"), "name", "file__path", "line")),
        (Q(name__icontains=name), (Length("name"), "name", "file__path", "line")),
    ]
    seen: set[int] = set()
    out: list[SymbolHit] = []
    for condition, order in tiers:
        if len(out) >= limit:
            break
        rows = base.filter(condition).order_by(*order).values(*_SYMBOL_FIELDS)[: limit + len(seen)]
        for row in rows:
            if row["id"] not in seen and len(out) < limit:
                seen.add(row["id"])
                out.append(_hit(row))
    return out


def symbol_references(*, workspace_id: int, name: str, limit: int = 100) -> list[ReferenceHit]:
    """Where a name is used (calls, type uses, imports), by file and line. 'A.b' looks for 'b'."""
    bare = _split_qualified(name)[1]
    rows = (
        SymbolReference.objects.filter(workspace_id=workspace_id, name=bare)
        .order_by("file__path", "line", "column")
        .values_list("name", "kind", "file__path", "line", "column")[:limit]
    )
    return [ReferenceHit(*row) for row in rows]


def symbol_definition(
    *, workspace_id: int, name: str, from_path: str | None = None, limit: int = 10
) -> list[SymbolHit]:
    """Where ``name`` is defined, best first: in a file ``from_path`` imports, in ``from_path`` itself, in a file
    those imports import, then anywhere (nearest directory first)."""
    container, bare = _split_qualified(name)
    if not bare:
        return []
    base = Symbol.objects.filter(workspace_id=workspace_id)
    rows: list[dict[str, Any]] = []
    if container:
        rows = list(base.filter(name=bare, container__iexact=container).values(*_SYMBOL_FIELDS)[:500])
    if not rows:
        rows = list(base.filter(name=bare).values(*_SYMBOL_FIELDS)[:500])
    if not rows:
        rows = list(base.filter(name__iexact=bare).values(*_SYMBOL_FIELDS)[:500])
    direct: set[str] = set()
    indirect: set[str] = set()
    if from_path:
        direct = _imported(workspace_id, [from_path])
        # bounded: a file importing hundreds of modules must not build a query past the parameter limit
        indirect = _imported(workspace_id, sorted(direct)[:500]) - direct if direct else set()
    here = posixpath.dirname(from_path or "")

    def rank(row: dict[str, Any]) -> tuple[Any, ...]:
        path = row["file__path"]
        if _covers(direct, path):
            place = 0
        elif path == from_path:
            place = 1
        elif _covers(indirect, path):
            place = 2
        else:
            place = 3
        near = 0 if posixpath.dirname(path) == here else 1
        return place, _KIND_ORDER.get(row["kind"], 2), near, path, row["line"]

    return [_hit(row) for row in sorted(rows, key=rank)[:limit]]


def _imported(workspace_id: int, paths: list[str]) -> set[str]:
    return set(
        FileDependency.objects.filter(workspace_id=workspace_id, file__path__in=paths)
        .exclude(target_path="")
        .values_list("target_path", flat=True)
    )


def _covers(targets: set[str], path: str) -> bool:
    # A Go import targets its package's first file (see workspace.index.imports): the whole directory is imported.
    if path in targets:
        return True
    return path.endswith(".go") and any(
        target.endswith(".go") and posixpath.dirname(target) == posixpath.dirname(path) for target in targets
    )


def file_dependencies(*, workspace_id: int, path: str) -> list[DependencyHit]:
    """What a file imports, in the order written; target_path is '' for imports outside the workspace."""
    rows = (
        FileDependency.objects.filter(workspace_id=workspace_id, file__path=path)
        .order_by("id")
        .values_list("module", "target_path")
    )
    return [DependencyHit(module, target) for module, target in rows]


def file_dependents(*, workspace_id: int, path: str) -> list[str]:
    """The files that import ``path`` (for a Go file: that import its package), sorted."""
    targets = [path]
    if path.endswith(".go"):
        directory = posixpath.dirname(path)
        prefix = f"{directory}/" if directory else ""
        siblings = IndexedFile.objects.filter(workspace_id=workspace_id, language="go", path__startswith=prefix)
        targets = [p for p in siblings.values_list("path", flat=True) if posixpath.dirname(p) == directory]
    rows = (
        FileDependency.objects.filter(workspace_id=workspace_id, target_path__in=targets)
        .values_list("file__path", flat=True)
        .distinct()
    )
    return sorted(set(rows) - {path})
