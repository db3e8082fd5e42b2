"""Reads of a workspace's test runs: history, the latest run, a summary with trend and flaky hints."""

from __future__ import annotations

import itertools
from typing import Any

from workspace.models import TestOutcome, TestRun

FLAKY_WINDOW = 10  # runs of the same command looked at for outcome flips
ORDER = ("-started_at", "-pk")


def _coverage(run: TestRun) -> dict[str, Any]:
    # service.test_run_execute stores the report's path when there is a percentage, else the reason there is none.
    if run.coverage_percent is not None:
        return {"available": True, "percent": run.coverage_percent, "source": run.coverage_source, "note": ""}
    note = run.coverage_source or "no coverage was recorded for this run"
    return {"available": False, "percent": None, "source": "", "note": note}


def _pass_rate(run: TestRun) -> float | None:
    """Passed out of the tests that ran (skipped ones excluded), as a percentage."""
    ran = (run.passed or 0) + (run.failed or 0) + (run.errors or 0)
    return round(100.0 * (run.passed or 0) / ran, 1) if ran else None


def _row(run: TestRun, *, output: bool = False) -> dict[str, Any]:
    counted = run.passed is not None
    row: dict[str, Any] = {
        "id": run.pk,
        "command": run.command,
        "outcome": run.outcome,
        "exit_code": run.exit_code,
        "tree_state": run.tree_state,
        "sandbox": run.sandbox,
        "passed": run.passed,
        "failed": run.failed,
        "skipped": run.skipped,
        "errors": run.errors,
        "total": sum(n or 0 for n in (run.passed, run.failed, run.skipped, run.errors)) if counted else None,
        "pass_rate": _pass_rate(run),
        "coverage": _coverage(run),
        "duration_seconds": run.duration_seconds,
        "started_at": run.started_at.isoformat(),
        "job_id": run.job_id,
    }
    if output:
        row["output_tail"] = run.output_tail
    return row


def test_run_get(*, test_run_id: int) -> dict[str, Any]:
    """One run with its output tail; TestRun.DoesNotExist when there is none."""
    return _row(TestRun.objects.get(pk=test_run_id), output=True)


def test_run_history(*, workspace_id: int, limit: int = 10) -> list[dict[str, Any]]:
    """The newest ``limit`` runs, newest first, without their output."""
    runs = TestRun.objects.filter(workspace_id=workspace_id).order_by(*ORDER)[: max(1, limit)]
    return [_row(run) for run in runs]


def test_run_latest(*, workspace_id: int) -> dict[str, Any] | None:
    run = TestRun.objects.filter(workspace_id=workspace_id).order_by(*ORDER).first()
    return _row(run, output=True) if run is not None else None


def test_run_passed_for_tree(*, workspace_id: int, tree_state: str) -> bool:
    """Whether the newest run on exactly this tree passed (the git policy's "tests must pass" check)."""
    if not tree_state:
        return False
    run = TestRun.objects.filter(workspace_id=workspace_id, tree_state=tree_state).order_by(*ORDER).first()
    return run is not None and run.outcome == TestOutcome.PASSED


def _delta(new: float | None, old: float | None, digits: int = 2) -> float | None:
    return None if new is None or old is None else round(new - old, digits)


def _trend(latest: TestRun, previous: TestRun | None) -> dict[str, Any] | None:
    if previous is None:
        return None
    failing = (latest.failed or 0) + (latest.errors or 0)
    failing_before = (previous.failed or 0) + (previous.errors or 0)
    if latest.outcome != previous.outcome and TestOutcome.PASSED in (latest.outcome, previous.outcome):
        direction = "better" if latest.outcome == TestOutcome.PASSED else "worse"
    elif failing != failing_before:
        direction = "better" if failing < failing_before else "worse"
    else:
        direction = "same"
    return {
        "previous_id": previous.pk,
        "previous_outcome": previous.outcome,
        "direction": direction,
        "passed_delta": _delta(latest.passed, previous.passed, 0),
        "failed_delta": _delta(latest.failed, previous.failed, 0),
        "coverage_delta": _delta(latest.coverage_percent, previous.coverage_percent),
        "duration_delta": _delta(latest.duration_seconds, previous.duration_seconds),
    }


def _flaky_hints(runs: list[TestRun]) -> list[str]:
    """Runs of one command, newest first: outcome flips on one tree mean flaky tests; many flips suggest so."""
    decided = [run for run in reversed(runs) if run.outcome in (TestOutcome.PASSED, TestOutcome.FAILED)]
    hints = []
    by_tree: dict[str, set[str]] = {}
    for run in decided:
        if run.tree_state:
            by_tree.setdefault(run.tree_state, set()).add(run.outcome)
    same_tree = [state for state, outcomes in by_tree.items() if len(outcomes) > 1]
    if same_tree:
        hints.append(
            f"{runs[0].command!r} both passed and failed on the same tree ({same_tree[0][:12]}): "
            "some tests are likely flaky (order, timing or shared state)"
        )
    flips = sum(1 for older, newer in itertools.pairwise(decided) if older.outcome != newer.outcome)
    if flips >= 2:
        hints.append(f"{runs[0].command!r} changed outcome {flips} times in its last {len(decided)} runs")
    return hints


def test_summary(*, workspace_id: int) -> dict[str, Any]:
    """The latest run's counts, pass rate and coverage, its trend against the run before, and flaky hints."""
    runs = list(TestRun.objects.filter(workspace_id=workspace_id).order_by(*ORDER)[:2])
    if not runs:
        return {
            "runs": 0,
            "latest": None,
            "coverage": {"available": False, "percent": None, "source": "", "note": "no test run yet"},
            "trend": None,
            "flaky_hints": [],
        }
    latest = runs[0]
    same_command = list(
        TestRun.objects.filter(workspace_id=workspace_id, command=latest.command).order_by(*ORDER)[:FLAKY_WINDOW]
    )
    return {
        "runs": TestRun.objects.filter(workspace_id=workspace_id).count(),
        "latest": _row(latest),
        "coverage": _coverage(latest),
        "trend": _trend(latest, runs[1] if len(runs) > 1 else None),
        "flaky_hints": _flaky_hints(same_command),
    }


# Their names start with "test_": keep pytest from collecting them from test modules that import them.
test_run_get.__test__ = False  # type: ignore[attr-defined]
test_run_history.__test__ = False  # type: ignore[attr-defined]
test_run_latest.__test__ = False  # type: ignore[attr-defined]
test_run_passed_for_tree.__test__ = False  # type: ignore[attr-defined]
test_summary.__test__ = False  # type: ignore[attr-defined]
