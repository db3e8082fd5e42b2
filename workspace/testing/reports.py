"""Finding the JUnit XML a test run wrote into the workspace (pure apart from reading files).

Only files modified after the run started count, so reports left by an earlier run (or committed to the repo)
are never mistaken for this run's results.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from workspace.testing.parse import TestCounts, UnsafeXml, counts_sum, parse_junit_xml

logger = logging.getLogger(__name__)

# pytest --junitxml=junit.xml and jest-junit's junit.xml anywhere (``**/junit*.xml``, so also reports/junit.xml),
# anything under a test-results directory (``test-results/**/*.xml``, Gradle's build/test-results/test/*.xml) and
# Surefire's target/surefire-reports/TEST-*.xml. Matched per path segment: fnmatch's "*" would cross "/".
# Directories never searched: dependencies and VCS data are large and hold other projects' reports.
SKIP_DIRS = frozenset({".git", "node_modules", ".venv", "venv", "__pycache__", ".tox", ".mypy_cache", "vendor"})
MAX_FILES = 200
MAX_FILE_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class JUnitResult:
    counts: TestCounts | None
    files: tuple[str, ...]  # relative paths that were JUnit and were counted
    notes: tuple[str, ...] = ()  # files skipped, and why


def _matches(relative: str) -> bool:
    *directories, name = relative.split("/")
    if fnmatch.fnmatchcase(name, "junit*.xml") or "test-results" in directories:
        return True
    return bool(directories) and directories[-1] == "surefire-reports" and fnmatch.fnmatchcase(name, "TEST-*.xml")


def junit_find(root: Path, *, modified_after: float) -> list[Path]:
    """Report files under ``root`` (see the patterns above) modified at or after ``modified_after``."""
    found: list[Path] = []
    for directory, subdirs, files in os.walk(root):  # followlinks=False: a symlinked dir is never entered
        subdirs[:] = sorted(name for name in subdirs if name not in SKIP_DIRS)
        base = Path(directory)
        for name in sorted(files):
            if not name.endswith(".xml"):
                continue
            path = base / name
            relative = path.relative_to(root).as_posix()
            if path.is_symlink() or not _matches(relative):
                continue
            try:
                if path.stat().st_mtime < modified_after:
                    continue
            except OSError:
                continue
            found.append(path)
            if len(found) >= MAX_FILES:
                return found
    return found


def junit_collect(root: Path, *, modified_after: float) -> JUnitResult:
    """The summed counts of every JUnit report the run wrote; None when it wrote none that parse as JUnit."""
    counted: list[TestCounts] = []
    files: list[str] = []
    notes: list[str] = []
    for path in junit_find(root, modified_after=modified_after):
        relative = path.relative_to(root).as_posix()
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                notes.append(f"{relative}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MB, skipped")
                continue
            counts = parse_junit_xml(path.read_bytes())
        except UnsafeXml as exc:
            notes.append(f"{relative}: {exc}")
            continue
        except OSError as exc:
            notes.append(f"{relative}: could not be read ({exc.strerror})")
            continue
        if counts is not None:
            counted.append(counts)
            files.append(relative)
    if notes:
        logger.info("JUnit reports skipped: %s", "; ".join(notes))
    return JUnitResult(counts_sum(counted), tuple(files), tuple(notes))
