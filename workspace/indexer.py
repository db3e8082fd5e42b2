"""Building and refreshing a workspace's index: files, symbols, references, dependencies, project signals.

``index_rebuild`` crawls the root, hashes every file (the sha256 of its bytes decides whether it changed; size and
mtime are never trusted), parses only new and changed files outside any transaction, and writes them in batches,
one transaction per batch: a file's row, its symbols, references, dependencies and signals always change
together, so a cancelled or crashed run leaves a consistent (partly refreshed) index that the next run completes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from workspace.index.crawl import CrawledFile, crawl, is_binary
from workspace.index.extract import extract
from workspace.index.frameworks import Signal
from workspace.index.imports import Dependency, FileSet, fileset_build, imports_resolve, module_resolve
from workspace.index.signals import signals_for
from workspace.index.values import Extraction
from workspace.jobs import NullProgress, Progress
from workspace.models import FileDependency, IndexedFile, ProjectSignal, Symbol, SymbolReference, Workspace
from workspace.selectors import workspace_get_info

logger = logging.getLogger(__name__)

# Files per write transaction: large enough to amortise the commit, small enough that a cancel is prompt and
# the parsed rows held in memory stay modest (a minified bundle alone can bring 10 000 references).
BATCH_FILES = 200
INSERT_BATCH = 1000  # rows per INSERT; Django lowers it to the backend's parameter limit
MAX_PATH = 1000  # IndexedFile.path's max_length: a longer path is skipped, never truncated into another path

T = TypeVar("T")


class WorkspaceRootMissing(ValueError):
    """The workspace's root directory does not exist (not cloned yet, or removed); the message is safe to show."""


@dataclass(frozen=True, slots=True)
class _Known:
    id: int
    content_hash: str
    parser: str


@dataclass(frozen=True, slots=True)
class _Parsed:
    file: CrawledFile
    content_hash: str
    size: int
    line_count: int
    extraction: Extraction
    dependencies: tuple[Dependency, ...]
    signals: tuple[Signal, ...]


def index_rebuild(*, workspace_id: int, progress: Progress | None = None, full: bool = False) -> dict[str, Any]:
    """Bring the index of a workspace up to date with its files; ``full`` re-parses unchanged files too.

    Returns {files, parsed, unchanged, removed, symbols, references, dependencies, seconds, languages: {language:
    files}, parsers: {parser: files}, message}; the counts of symbols, references and dependencies are totals.

    Raises WorkspaceRootMissing when the root is not a directory, and JobCancelled (from ``progress``) when the
    job is cancelled; batches already written stay.
    """
    progress = progress or NullProgress()
    started = time.perf_counter()
    info = workspace_get_info(workspace_id=workspace_id)
    root = Path(os.path.realpath(info.root))
    if not root.is_dir():
        raise WorkspaceRootMissing(f"workspace {info.name!r}: its root {info.root} does not exist; clone or create it")
    progress.update(0, 0, "listing files")
    files: list[CrawledFile] = []
    for found in crawl(root, ignore_globs=info.ignore_globs, max_bytes=settings.LYNKR_INDEX_MAX_FILE_BYTES):
        if len(found.path) > MAX_PATH:
            logger.debug("not indexing a path longer than %d characters", MAX_PATH)
            continue
        files.append(found)
        if len(files) % 500 == 0:
            progress.check_cancelled()
    known = {
        path: _Known(pk, content_hash, parser)
        for pk, path, content_hash, parser in IndexedFile.objects.filter(workspace_id=workspace_id).values_list(
            "id", "path", "content_hash", "parser"
        )
    }
    current = {found.path for found in files}
    removed = [known[path].id for path in known.keys() - current]
    _delete_files(removed)
    go_mods = {found.path: _read_text(root, found.path) for found in files if found.path.rsplit("/", 1)[-1] == "go.mod"}
    fileset = fileset_build(current, root_name=root.name, go_mods=go_mods)
    total = len(files)
    progress.update(0, total, f"indexing {total} files")
    parsers: Counter[str] = Counter()
    parsed_ids: set[int] = set()
    parsed_count = unchanged = 0
    vanished: list[str] = []
    resolve_again = bool(removed) or bool(current - known.keys())
    for done, batch in _chunks(files, BATCH_FILES):
        parsed: list[_Parsed] = []
        for found in batch:
            progress.check_cancelled()
            data = _read_bytes(root, found)
            if data is None:
                vanished.append(found.path)
                continue
            content_hash = hashlib.sha256(data).hexdigest()
            previous = known.get(found.path)
            if previous is not None and previous.content_hash == content_hash and not full:
                unchanged += 1
                parsers[previous.parser] += 1
                continue
            item = _parse(found, data, content_hash, fileset)
            parsed.append(item)
            parsers[item.extraction.parser] += 1
            resolve_again = resolve_again or found.path.endswith("go.mod")
        parsed_ids |= _write_batch(workspace_id, parsed, known)
        parsed_count += len(parsed)
        progress.update(done, total, f"indexed {done} of {total} files")
    # Deleted (or grown past the limit, or turned binary) between the crawl and the read: gone from the index.
    _delete_files([known[path].id for path in vanished if path in known])
    if resolve_again:
        _resolve_again(workspace_id, fileset, skip_file_ids=parsed_ids)
    Workspace.objects.filter(pk=workspace_id).update(indexed_at=timezone.now())
    summary: dict[str, Any] = dict(
        files=total - len(vanished),
        parsed=parsed_count,
        unchanged=unchanged,
        removed=len(removed) + len(vanished),
        symbols=Symbol.objects.filter(workspace_id=workspace_id).count(),
        references=SymbolReference.objects.filter(workspace_id=workspace_id).count(),
        dependencies=FileDependency.objects.filter(workspace_id=workspace_id).count(),
        seconds=round(time.perf_counter() - started, 3),
        languages=dict(Counter(found.language or "other" for found in files).most_common()),
        parsers=dict(parsers.most_common()),
    )
    summary["message"] = f"indexed {summary['files']} files ({parsed_count} parsed, {summary['removed']} removed)"
    progress.update(total, total, summary["message"])
    logger.info(
        "indexed workspace %s: %d files, %d parsed, %d removed in %.1f s",
        info.name,
        summary["files"],
        parsed_count,
        summary["removed"],
        summary["seconds"],
    )
    return summary


def _chunks(items: Sequence[T], size: int) -> Iterator[tuple[int, Sequence[T]]]:
    """(items done after this chunk, chunk)."""
    for start in range(0, len(items), size):
        chunk = items[start : start + size]
        yield start + len(chunk), chunk


def _read_bytes(root: Path, found: CrawledFile) -> bytes | None:
    try:
        data = (root / found.path).read_bytes()
    except OSError:
        return None
    if len(data) > settings.LYNKR_INDEX_MAX_FILE_BYTES or is_binary(data):
        return None  # grew or changed since the crawl
    return data


def _read_text(root: Path, relative: str) -> str:
    try:
        return (root / relative).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _parse(found: CrawledFile, data: bytes, content_hash: str, fileset: FileSet) -> _Parsed:
    extraction = extract(data, found.language)
    dependencies = imports_resolve(fileset, path=found.path, language=found.language, imports=extraction.imports)
    line_count = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    return _Parsed(
        file=found,
        content_hash=content_hash,
        size=len(data),
        line_count=line_count,
        extraction=extraction,
        dependencies=tuple(dependencies),
        signals=tuple(signals_for(found.path, data)),
    )


def _delete_files(ids: list[int]) -> None:
    """Delete file rows; their symbols, references, dependencies and signals cascade."""
    for start in range(0, len(ids), 500):
        with transaction.atomic():
            IndexedFile.objects.filter(id__in=ids[start : start + 500]).delete()


def _write_batch(workspace_id: int, parsed: list[_Parsed], known: dict[str, _Known]) -> set[int]:
    """Replace the rows of the parsed files in one transaction; the ids of their file rows."""
    if not parsed:
        return set()
    now = timezone.now()
    rows: dict[str, IndexedFile] = {}
    for item in parsed:
        previous = known.get(item.file.path)
        rows[item.file.path] = IndexedFile(
            id=previous.id if previous else None,
            workspace_id=workspace_id,
            path=item.file.path,
            language=item.file.language,
            content_hash=item.content_hash,
            size=item.size,
            line_count=item.line_count,
            parser=item.extraction.parser,
            indexed_at=now,
        )
    existing = [row for row in rows.values() if row.pk is not None]
    fresh = [row for row in rows.values() if row.pk is None]
    with transaction.atomic():
        if existing:
            ids = [row.pk for row in existing]
            for model in (Symbol, SymbolReference, FileDependency, ProjectSignal):
                model.objects.filter(file_id__in=ids).delete()
            IndexedFile.objects.bulk_update(
                existing,
                ["language", "content_hash", "size", "line_count", "parser", "indexed_at"],
                batch_size=INSERT_BATCH,
            )
        IndexedFile.objects.bulk_create(fresh, batch_size=INSERT_BATCH)
        symbols: list[Symbol] = []
        references: list[SymbolReference] = []
        dependencies: list[FileDependency] = []
        signals: list[ProjectSignal] = []
        for item in parsed:
            file_id = rows[item.file.path].pk
            common = {"workspace_id": workspace_id, "file_id": file_id}
            symbols += [
                Symbol(
                    **common,
                    name=d.name,
                    kind=d.kind,
                    line=d.line,
                    column=d.column,
                    end_line=d.end_line,
                    container=d.container,
                )
                for d in item.extraction.definitions
            ]
            references += [
                SymbolReference(**common, name=r.name, kind=r.kind, line=r.line, column=r.column)
                for r in item.extraction.references
            ]
            dependencies += [
                FileDependency(**common, module=d.module, target_path=d.target_path) for d in item.dependencies
            ]
            signals += [
                ProjectSignal(
                    **common,
                    kind=s.kind,
                    ecosystem=s.ecosystem,
                    name=_text(s.name, 300),
                    version=_text(s.version, 100),
                    dev=s.dev,
                )
                for s in item.signals
            ]
        Symbol.objects.bulk_create(symbols, batch_size=INSERT_BATCH)
        SymbolReference.objects.bulk_create(references, batch_size=INSERT_BATCH)
        FileDependency.objects.bulk_create(dependencies, batch_size=INSERT_BATCH)
        ProjectSignal.objects.bulk_create(signals, batch_size=INSERT_BATCH)
    return {row.pk for row in rows.values()}


def _text(value: str, limit: int) -> str:
    """Manifest text for a CharField: NUL dropped (PostgreSQL rejects it), cut to the column's length."""
    return value.replace("\x00", "")[:limit]


def _resolve_again(workspace_id: int, fileset: FileSet, *, skip_file_ids: set[int]) -> None:
    """Re-resolve the imports of files not parsed in this run: files appeared or disappeared since."""
    rows = FileDependency.objects.filter(workspace_id=workspace_id).values_list(
        "id", "file_id", "file__path", "file__language", "module", "target_path"
    )
    changed: list[FileDependency] = []
    for pk, file_id, path, language, module, target in rows.iterator(chunk_size=2000):
        if file_id in skip_file_ids:
            continue
        resolved = module_resolve(fileset, path=path, language=language, module=module)
        if resolved != target:
            changed.append(FileDependency(id=pk, target_path=resolved))
    for start in range(0, len(changed), INSERT_BATCH):
        with transaction.atomic():
            FileDependency.objects.bulk_update(changed[start : start + INSERT_BATCH], ["target_path"])
