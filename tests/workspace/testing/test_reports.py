from __future__ import annotations

import os
import time
from pathlib import Path

from workspace.testing.reports import junit_collect, junit_find

SUITE = '<testsuite tests="{n}">{cases}</testsuite>'


def suite(passed: int, failed: int = 0) -> str:
    cases = "<testcase name='p'/>" * passed + "<testcase name='f'><failure/></testcase>" * failed
    return SUITE.format(n=passed + failed, cases=cases)


def write(root: Path, relative: str, content: str, *, age: float = 0.0) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    if age:
        stamp = time.time() - age
        os.utime(path, (stamp, stamp))
    return path


def test_only_reports_written_by_this_run_in_known_places_count(tmp_path: Path) -> None:
    write(tmp_path, "junit.xml", suite(2, 1))
    write(tmp_path, "frontend/junit-web.xml", suite(3))
    write(tmp_path, "build/test-results/test/TEST-a.FooTest.xml", suite(1))
    write(tmp_path, "target/surefire-reports/TEST-a.BarTest.xml", suite(1, 1))
    write(tmp_path, "reports/old/junit.xml", suite(50), age=3600)  # from an earlier run
    write(tmp_path, "node_modules/pkg/junit.xml", suite(40))  # a dependency's file
    write(tmp_path, "junitish/notes.xml", suite(30))  # "junit*" must match the file name, not a directory
    write(tmp_path, "config.xml", suite(20))  # not a report location
    result = junit_collect(tmp_path, modified_after=time.time() - 60)
    assert result.counts is not None
    assert (result.counts.passed, result.counts.failed, result.counts.total) == (7, 2, 9)
    assert sorted(result.files) == [
        "build/test-results/test/TEST-a.FooTest.xml",
        "frontend/junit-web.xml",
        "junit.xml",
        "target/surefire-reports/TEST-a.BarTest.xml",
    ]


def test_unsafe_and_non_junit_files_are_skipped_with_a_note(tmp_path: Path) -> None:
    write(tmp_path, "junit.xml", '<!DOCTYPE x [<!ENTITY a "b">]><testsuite><testcase name="&a;"/></testsuite>')
    write(tmp_path, "test-results/coverage.xml", "<coverage line-rate='1'/>")
    result = junit_collect(tmp_path, modified_after=time.time() - 60)
    assert result.counts is None
    assert result.files == ()
    assert len(result.notes) == 1 and result.notes[0].startswith("junit.xml: ")


def test_symlinked_reports_are_not_followed(tmp_path: Path) -> None:
    outside = write(tmp_path, "outside/junit.xml", suite(5))
    root = tmp_path / "ws"
    root.mkdir()
    (root / "junit.xml").symlink_to(outside)
    (root / "test-results").symlink_to(tmp_path / "outside", target_is_directory=True)
    assert junit_find(root, modified_after=0) == []
