"""Coverage percentages from the report files test runners write (pure apart from reading those files).

The first configured file that exists (and, when asked, was written by this run) wins. Nothing here raises for a
missing or broken report: the result carries ``percent=None`` and a note saying why, which the model reads.
"""

from __future__ import annotations

import json
import math
import os
import xml.etree.ElementTree as ET  # only for the ParseError type; parsing goes through xmlsafe
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workspace.paths import PathRefused, resolve_inside
from workspace.testing.xmlsafe import UnsafeXml, local_name, safe_xml_root

# Used when a workspace lists no coverage files (WorkspaceInfo already falls back to the settings' list).
DEFAULT_COVERAGE_FILES = (
    "coverage/coverage-summary.json",
    "coverage.xml",
    "coverage/cobertura-coverage.xml",
    "coverage/lcov.info",
    "lcov.info",
    "coverage.out",
    "target/site/jacoco/jacoco.xml",
    "build/reports/jacoco/test/jacocoTestReport.xml",
)
MAX_REPORT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class CoverageReport:
    percent: float | None = None  # lines (statements for Go), 0-100
    source: str = ""  # the report file, relative to the workspace root
    format: str = ""  # istanbul, cobertura, lcov, go, jacoco
    branches_percent: float | None = None
    statements_percent: float | None = None
    functions_percent: float | None = None
    note: str = ""


class _Unreadable(ValueError):
    """A report that exists but cannot be understood; the message goes into the note."""


def _pct(covered: float, total: float) -> float | None:
    return round(100.0 * covered / total, 2) if total > 0 else None


def _number(value: Any) -> float | None:
    # Istanbul writes "Unknown" for pct when a category has no entries.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return round(float(value), 2)


def _istanbul(data: bytes) -> dict[str, float | None]:
    """coverage-summary.json from Istanbul's json-summary reporter: {"total": {"lines": {"pct": 85.5}, ...}}
    (https://istanbul.js.org/docs/advanced/alternative-reporters/#json-summary)."""
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise _Unreadable(f"not JSON ({exc})") from exc
    total = document.get("total") if isinstance(document, dict) else None
    if not isinstance(total, dict) or not isinstance(total.get("lines"), dict):
        raise _Unreadable("no total.lines entry")

    def pct(kind: str) -> float | None:
        entry = total.get(kind)
        return _number(entry.get("pct")) if isinstance(entry, dict) else None

    return {
        "percent": pct("lines"),
        "branches_percent": pct("branches"),
        "statements_percent": pct("statements"),
        "functions_percent": pct("functions"),
    }


def _rate(element: ET.Element, name: str) -> float | None:
    try:
        value = float(element.get(name, ""))
    except ValueError:
        return None
    return round(value * 100.0, 2) if math.isfinite(value) else None


def _xml(data: bytes) -> tuple[str, dict[str, float | None]]:
    try:
        root = safe_xml_root(data, allow_external_doctype=True)
    except (ET.ParseError, UnsafeXml) as exc:
        raise _Unreadable(str(exc)) from exc
    tag = local_name(root.tag)
    if tag == "coverage":
        # Cobertura (coverage.py's `coverage xml`, istanbul's cobertura reporter): line-rate and branch-rate are
        # fractions on the root (https://coverage.readthedocs.io/en/latest/cmd.html#xml-reporting).
        percent = _rate(root, "line-rate")
        if percent is None:
            raise _Unreadable("the <coverage> element has no line-rate")
        return "cobertura", {"percent": percent, "branches_percent": _rate(root, "branch-rate")}
    if tag == "report":
        # JaCoCo: the report's own <counter type="LINE" missed= covered=> children are the totals
        # (https://www.jacoco.org/jacoco/trunk/doc/counters.html).
        counters: dict[str, float | None] = {}
        for counter in root.findall("counter"):
            try:
                missed, covered = int(counter.get("missed", "")), int(counter.get("covered", ""))
            except ValueError:
                continue
            counters[counter.get("type", "")] = _pct(covered, missed + covered)
        if "LINE" not in counters:
            raise _Unreadable('no report-level <counter type="LINE">')
        return "jacoco", {
            "percent": counters["LINE"],
            "branches_percent": counters.get("BRANCH"),
            "statements_percent": counters.get("INSTRUCTION"),
            "functions_percent": counters.get("METHOD"),
        }
    raise _Unreadable(f"unknown XML report <{tag}> (expected Cobertura <coverage> or JaCoCo <report>)")


def _lcov(data: bytes) -> dict[str, float | None]:
    """lcov tracefile: per source file "LF:<lines found>" and "LH:<lines hit>", likewise BRF/BRH and FNF/FNH
    (https://github.com/linux-test-project/lcov/blob/master/man/geninfo.1, "TRACEFILE FORMAT")."""
    sums = dict.fromkeys(("LF", "LH", "BRF", "BRH", "FNF", "FNH"), 0)
    for line in data.decode("utf-8", errors="replace").splitlines():
        key, _, value = line.strip().partition(":")
        if key in sums:
            try:
                sums[key] += int(value)
            except ValueError as exc:
                raise _Unreadable(f"bad line {line.strip()!r}") from exc
    if not sums["LF"]:
        raise _Unreadable("no LF/LH records")
    return {
        "percent": _pct(sums["LH"], sums["LF"]),
        "branches_percent": _pct(sums["BRH"], sums["BRF"]),
        "functions_percent": _pct(sums["FNH"], sums["FNF"]),
    }


def _go(data: bytes) -> dict[str, float | None]:
    """Go's cover profile: "mode: set|count|atomic", then "file.go:l.c,l.c numStmts count" per block. A block can
    repeat when packages are merged (-coverpkg); like `go tool cover` it is covered if any copy was hit
    (https://pkg.go.dev/golang.org/x/tools/cover#ParseProfiles)."""
    lines = data.decode("utf-8", errors="replace").splitlines()
    if not lines or not lines[0].startswith("mode:"):
        raise _Unreadable("the first line is not 'mode: ...'")
    blocks: dict[str, tuple[int, bool]] = {}
    for line in lines[1:]:
        if not line.strip():
            continue
        block, _, numbers = line.rpartition(" ")
        block, _, statements = block.rpartition(" ")
        try:
            count, size = int(numbers), int(statements)
        except ValueError as exc:
            raise _Unreadable(f"bad block line {line!r}") from exc
        previous = blocks.get(block)
        blocks[block] = (size, count > 0 or (previous is not None and previous[1]))
    total = sum(size for size, _ in blocks.values())
    covered = sum(size for size, hit in blocks.values() if hit)
    percent = _pct(covered, total)
    return {"percent": percent, "statements_percent": percent}


def _read(path: Path, relative: str) -> CoverageReport:
    if path.stat().st_size > MAX_REPORT_BYTES:
        raise _Unreadable(f"larger than {MAX_REPORT_BYTES // (1024 * 1024)} MB")
    data = path.read_bytes()
    name = path.name.lower()
    if name.endswith(".json"):
        kind, values = "istanbul", _istanbul(data)
    elif name.endswith(".xml"):
        kind, values = _xml(data)
    elif name.endswith(".info") or data.lstrip().startswith((b"TN:", b"SF:")):
        kind, values = "lcov", _lcov(data)
    elif data.startswith(b"mode:"):
        kind, values = "go", _go(data)
    else:
        raise _Unreadable("unknown report format")
    if values.get("percent") is None:
        return CoverageReport(source=relative, format=kind, note=f"{relative} has no measurable lines")
    return CoverageReport(
        percent=values["percent"],
        source=relative,
        format=kind,
        branches_percent=values.get("branches_percent"),
        statements_percent=values.get("statements_percent"),
        functions_percent=values.get("functions_percent"),
    )


def coverage_read(root: Path, candidates: Sequence[str] = (), *, modified_after: float | None = None) -> CoverageReport:
    """The first readable report among ``candidates`` (relative to ``root``, confined to it).

    ``modified_after`` (a time.time() value) skips reports older than the run, so a stale file from an earlier
    run is never reported as this run's coverage.
    """
    names = tuple(candidates) or DEFAULT_COVERAGE_FILES
    stale: list[str] = []
    for relative in names:
        try:
            path = resolve_inside(root, relative)
        except PathRefused:
            continue
        if not path.is_file():
            continue
        try:
            if modified_after is not None and os.stat(path).st_mtime < modified_after:
                stale.append(relative)
                continue
            return _read(path, relative)
        except (_Unreadable, OSError) as exc:
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            return CoverageReport(source=relative, note=f"{relative} could not be parsed: {detail}")
    looked = ", ".join(names)
    if stale:
        return CoverageReport(note=f"no coverage file written by this run ({', '.join(stale)} predates it)")
    return CoverageReport(note=f"no coverage file found (looked for: {looked})")
