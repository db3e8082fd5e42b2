"""Running a workspace's tests and recording the TestRun (the write side; reads are in selectors.py)."""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from workspace.jobs import JobCancelled, NullProgress, Progress
from workspace.models import TestOutcome, TestRun
from workspace.selectors import workspace_get_info
from workspace.testing.coverage import CoverageReport, coverage_read
from workspace.testing.parse import TestCounts, parse_output
from workspace.testing.reports import junit_collect
from workspace.testing.runner import CommandRefused, RunResult, SandboxUnavailable, command_run, split_command
from workspace.testing.selectors import (
    test_run_get,
    test_run_history,
    test_run_latest,
    test_run_passed_for_tree,
    test_summary,
)

__all__ = [
    "NoTestCommand",
    "test_run_execute",
    "test_run_get",
    "test_run_history",
    "test_run_latest",
    "test_run_passed_for_tree",
    "test_summary",
]

logger = logging.getLogger(__name__)

# File timestamps come from the kernel's coarse clock, which can lag time.time() by a tick: allow for it when
# deciding whether a report was written by this run.
MTIME_SLACK_SECONDS = 2.0


class NoTestCommand(ValueError):
    """The workspace has no test command and WORKSPACE_TEST_COMMAND is unset."""


def _tree_state(root: Path) -> str:
    """The digest of the tree the tests ran on; "" when the root is no git repository (or git is unavailable)."""
    for module in ("workspace.gitops", "workspace.git.state"):
        try:
            return str(importlib.import_module(module).tree_state(root))
        except ModuleNotFoundError as exc:
            if exc.name != module:
                break
        except Exception as exc:  # non-repository, unborn oddities: a test run does not need git
            logger.debug("no tree state for %s: %s", root, exc)
            break
    return ""


def _hidden_paths() -> list[Path]:
    """What a sandboxed test must not see: the gateway's data dir, its SQLite database if elsewhere, its dotenv
    file and every secret mounted as a file (``NAME_FILE`` variables, docs/configuration.md)."""
    hidden = [Path(settings.DATA_DIR)]
    database = settings.DATABASES["default"]
    name = str(database.get("NAME") or "")
    if "sqlite" in str(database.get("ENGINE", "")) and os.path.isabs(name):
        hidden.append(Path(name))
    dotenv = Path(os.environ.get("LYNKR_ENV_FILE", Path(settings.BASE_DIR) / ".env"))
    secret_files = [Path(value) for key, value in os.environ.items() if key.endswith("_FILE") and os.path.isabs(value)]
    hidden.extend(path for path in (dotenv, *secret_files) if path.exists())
    return hidden


def _outcome(result: RunResult, counts: TestCounts | None) -> TestOutcome:
    if result.cancelled:
        return TestOutcome.CANCELLED
    if result.timed_out:
        return TestOutcome.TIMEOUT
    if result.error or result.exit_code is None:
        return TestOutcome.ERROR
    if result.exit_code == 0:
        broken = counts is not None and (counts.failed or counts.errors)
        return TestOutcome.FAILED if broken else TestOutcome.PASSED
    # Non-zero: failing tests, or a run that never got to its tests (import error, bad flag, nothing collected).
    return TestOutcome.FAILED if counts is not None and counts.total > 0 else TestOutcome.ERROR


def _counts(root: Path, result: RunResult) -> TestCounts | None:
    """JUnit reports the run wrote win over its printed summary (they list every test case)."""
    if result.error:
        return None
    junit = junit_collect(root, modified_after=result.started_at - MTIME_SLACK_SECONDS)
    if junit.counts is not None:
        return junit.counts
    return parse_output(result.output_tail)


def test_run_execute(
    *,
    workspace_id: int,
    job_id: int | None = None,
    user_id: int | None = None,
    progress: Progress = NullProgress(),
) -> int:
    """Run the workspace's test command and save a TestRun; returns its id.

    Raises NoTestCommand when there is nothing to run. A command that needs a shell, a missing sandbox or program
    is recorded as an ``error`` run with the reason as its output. When the job is cancelled the run is saved as
    ``cancelled`` and JobCancelled is raised again so the job ends cancelled too.
    """
    info = workspace_get_info(workspace_id=workspace_id)
    command = info.test_command.strip()
    if not command:
        raise NoTestCommand(
            f"workspace {info.name!r} has no test command: set the workspace's test command in the admin "
            "or WORKSPACE_TEST_COMMAND for all workspaces"
        )
    started = timezone.now()
    tree_state = _tree_state(info.root)
    coverage = CoverageReport()
    try:
        argv = split_command(command)
        result = command_run(
            argv,
            root=info.root,
            timeout=info.test_timeout_seconds,
            sandbox=info.test_sandbox,
            hidden=_hidden_paths(),
            progress=progress,
        )
    except (CommandRefused, SandboxUnavailable) as exc:
        result = RunResult((), "", None, "", 0, 0.0, started.timestamp(), error=str(exc))
    counts = _counts(info.root, result)
    outcome = _outcome(result, counts)
    if outcome in (TestOutcome.PASSED, TestOutcome.FAILED):
        coverage = coverage_read(info.root, info.coverage_files, modified_after=result.started_at - MTIME_SLACK_SECONDS)
    output = result.output_tail
    if result.error:
        output = f"{result.error}\n{output}" if output else result.error
    run = TestRun.objects.create(
        workspace_id=workspace_id,
        job_id=job_id,
        command=command[:1000],
        tree_state=tree_state,
        outcome=outcome,
        exit_code=result.exit_code,
        sandbox=result.sandbox,
        passed=counts.passed if counts else None,
        failed=counts.failed if counts else None,
        skipped=counts.skipped if counts else None,
        errors=counts.errors if counts else None,
        coverage_percent=coverage.percent,
        # The model has no note field: without a percentage the column says why there is none.
        coverage_source=(coverage.source if coverage.percent is not None else coverage.note)[:300],
        output_tail=output,
        duration_seconds=result.duration_seconds,
        started_at=started,
    )
    logger.info("test run %s on workspace %s: %s (user %s, job %s)", run.pk, workspace_id, outcome, user_id, job_id)
    if outcome == TestOutcome.CANCELLED:
        raise JobCancelled(f"test run {run.pk} was cancelled")
    return run.pk


test_run_execute.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported by one
