from __future__ import annotations

import re
import shlex
import shutil
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from tests.workspace.repos import make_repo
from workspace.info import ToolContext
from workspace.jobs import JobCancelled, job_create
from workspace.models import JobKind, TestRun
from workspace.testing import selectors, service

MakeWorkspace = Callable[..., ToolContext]
needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

COVERAGE_XML = '<?xml version="1.0" ?><coverage line-rate="0.875" branch-rate="0.5" version="7.6"></coverage>'

# A stand-in for a test runner: prints a pytest-style summary, optionally writes reports, exits as asked.
CHECK = """
import pathlib, sys
mode = sys.argv[1]
if "coverage" in sys.argv:
    pathlib.Path("coverage.xml").write_text({coverage!r})
if "junit" in sys.argv:
    pathlib.Path("reports").mkdir(exist_ok=True)
    pathlib.Path("reports/junit.xml").write_text(
        '<testsuite tests="4"><testcase name="a"/><testcase name="b"/><testcase name="c"/>'
        '<testcase name="d"><skipped/></testcase></testsuite>')
if mode == "pass":
    print("tests/test_app.py ...")
    print("\\x1b[32m=== 3 passed in 0.02s ===\\x1b[0m")
    sys.exit(0)
if mode == "fail":
    print("=== 1 failed, 2 passed in 0.02s ===")
    sys.exit(1)
if mode == "lying":
    print("=== 1 failed, 2 passed in 0.02s ===")
    sys.exit(0)
if mode == "broken":
    print("ImportError: No module named 'app'")
    sys.exit(4)
"""


def workspace_with_check(make_workspace: MakeWorkspace, root: Path, *args: str, **fields: Any) -> ToolContext:
    root.mkdir(parents=True, exist_ok=True)
    (root / "check.py").write_text(CHECK.format(coverage=COVERAGE_XML))
    command = shlex.join([sys.executable, "check.py", *args])
    return make_workspace(root, test_command=command, **fields)


def run(ctx: ToolContext, **kwargs: Any) -> TestRun:
    return TestRun.objects.get(pk=service.test_run_execute(workspace_id=ctx.workspace.id, **kwargs))


def test_passing_run_records_counts_coverage_and_sandbox(make_workspace: MakeWorkspace, tmp_path: Path) -> None:
    ctx = workspace_with_check(make_workspace, tmp_path / "ws", "pass", "coverage")
    saved = run(ctx, user_id=ctx.user_id)
    assert saved.outcome == "passed"
    assert saved.exit_code == 0
    assert (saved.passed, saved.failed, saved.skipped, saved.errors) == (3, 0, 0, 0)
    assert (saved.coverage_percent, saved.coverage_source) == (87.5, "coverage.xml")
    assert saved.sandbox == ("bubblewrap" if shutil.which("bwrap") else "none")
    assert saved.tree_state == ""  # not a git repository
    assert "3 passed" in saved.output_tail
    assert saved.command == ctx.workspace.test_command
    assert saved.duration_seconds > 0


def test_junit_report_wins_over_the_printed_summary(make_workspace: MakeWorkspace, tmp_path: Path) -> None:
    ctx = workspace_with_check(make_workspace, tmp_path / "ws", "pass", "junit", test_sandbox="none")
    saved = run(ctx)
    assert (saved.passed, saved.skipped, saved.outcome) == (3, 1, "passed")


@pytest.mark.parametrize(
    ("mode", "outcome", "counts"),
    [
        ("fail", "failed", (2, 1)),
        ("lying", "failed", (2, 1)),  # exit 0 but the summary shows a failure
        ("broken", "error", (None, None)),  # non-zero and no tests parsed: it never got to the tests
    ],
)
def test_outcomes(
    make_workspace: MakeWorkspace, tmp_path: Path, mode: str, outcome: str, counts: tuple[Any, Any]
) -> None:
    ctx = workspace_with_check(make_workspace, tmp_path / "ws", mode, test_sandbox="none")
    saved = run(ctx)
    assert saved.outcome == outcome
    assert (saved.passed, saved.failed) == counts
    assert saved.coverage_percent is None


def test_timeout_is_recorded(make_workspace: MakeWorkspace, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "slow.py").write_text("import time\nprint('collecting', flush=True)\ntime.sleep(60)\n")
    ctx = make_workspace(root, test_command=f"{sys.executable} slow.py", test_timeout_seconds=1)
    saved = run(ctx)
    assert (saved.outcome, saved.exit_code) == ("timeout", None)
    assert "collecting" in saved.output_tail


class CancelWhenStarted:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def update(self, done: int, total: int, message: str = "") -> None:
        return None

    def check_cancelled(self) -> None:
        if self.marker.exists():
            raise JobCancelled("stop")


def test_cancelled_run_is_saved_and_the_job_sees_the_cancel(make_workspace: MakeWorkspace, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "wait.py").write_text("import pathlib, time\npathlib.Path('started').touch()\ntime.sleep(60)\n")
    ctx = make_workspace(root, test_command=f"{sys.executable} wait.py", test_sandbox="none")
    job_id = job_create(workspace_id=ctx.workspace.id, kind=JobKind.TEST_RUN)
    with pytest.raises(JobCancelled):
        service.test_run_execute(
            workspace_id=ctx.workspace.id, job_id=job_id, progress=CancelWhenStarted(root / "started")
        )
    saved = TestRun.objects.get(job_id=job_id)
    assert saved.outcome == "cancelled"


def test_no_test_command_is_a_clear_error(make_workspace: MakeWorkspace, tmp_path: Path, settings: Any) -> None:
    settings.LYNKR_WORKSPACE_TEST_COMMAND = ""
    ctx = make_workspace(tmp_path)
    with pytest.raises(service.NoTestCommand, match="WORKSPACE_TEST_COMMAND"):
        service.test_run_execute(workspace_id=ctx.workspace.id)
    assert not TestRun.objects.exists()


def test_shell_syntax_is_refused_and_nothing_runs(make_workspace: MakeWorkspace, tmp_path: Path) -> None:
    ctx = make_workspace(tmp_path, test_command="touch ran.marker && echo hi")
    saved = run(ctx)
    assert saved.outcome == "error"
    assert "script file" in saved.output_tail
    assert not (tmp_path / "ran.marker").exists()


def test_tree_state_of_a_git_workspace(make_workspace: MakeWorkspace, tmp_path: Path) -> None:
    root = make_repo(
        tmp_path / "repo", {"check.py": CHECK.format(coverage=COVERAGE_XML), ".gitignore": "coverage.xml\n"}
    )
    ctx = make_workspace(root, test_command=f"{sys.executable} check.py pass coverage", test_sandbox="none")
    first, second = run(ctx), run(ctx)
    assert re.fullmatch(r"[0-9a-f]{64}", first.tree_state)
    assert second.tree_state == first.tree_state  # the ignored coverage.xml does not change the tree
    (root / "new_module.py").write_text("x = 1\n")
    assert run(ctx).tree_state != first.tree_state
    assert selectors.test_run_passed_for_tree(workspace_id=ctx.workspace.id, tree_state=first.tree_state)
    assert not selectors.test_run_passed_for_tree(workspace_id=ctx.workspace.id, tree_state="")


@needs_bwrap
def test_the_gateway_data_dir_is_hidden_from_sandboxed_tests(
    make_workspace: MakeWorkspace, tmp_path: Path, settings: Any
) -> None:
    root = tmp_path / "ws"
    data = root / "lynkr-data"  # outside /tmp's tmpfs would be no different: the data dir gets its own
    data.mkdir(parents=True)
    (data / "secret_key").write_text("the-gateway-secret")
    settings.DATA_DIR = data
    (root / "peek.py").write_text(
        "import sys\ntry:\n    print(open(sys.argv[1]).read())\nexcept OSError as exc:\n    print('HIDDEN', exc)\n"
    )
    ctx = make_workspace(
        root, test_command=f"{sys.executable} peek.py {data / 'secret_key'}", test_sandbox="bubblewrap"
    )
    saved = run(ctx)
    assert "HIDDEN" in saved.output_tail
    assert "the-gateway-secret" not in saved.output_tail


# --- summary and history ---------------------------------------------------------------------------------------


def test_project_summary_with_coverage(make_workspace: MakeWorkspace, tmp_path: Path) -> None:
    ctx = workspace_with_check(make_workspace, tmp_path / "ws", "pass", "coverage", test_sandbox="none")
    run(ctx)
    summary = selectors.test_summary(workspace_id=ctx.workspace.id)
    assert summary["runs"] == 1
    assert summary["latest"]["outcome"] == "passed"
    assert (summary["latest"]["passed"], summary["latest"]["total"], summary["latest"]["pass_rate"]) == (3, 3, 100.0)
    assert summary["coverage"] == {"available": True, "percent": 87.5, "source": "coverage.xml", "note": ""}
    assert summary["trend"] is None
    assert summary["flaky_hints"] == []


def test_project_summary_without_coverage(make_workspace: MakeWorkspace, tmp_path: Path) -> None:
    ctx = workspace_with_check(make_workspace, tmp_path / "ws", "fail", test_sandbox="none")
    run(ctx)
    summary = selectors.test_summary(workspace_id=ctx.workspace.id)
    assert summary["latest"]["outcome"] == "failed"
    assert summary["latest"]["pass_rate"] == 66.7
    coverage = summary["coverage"]
    assert (coverage["available"], coverage["percent"]) == (False, None)
    assert coverage["note"].startswith("no coverage file found (looked for: ")
    assert "coverage.xml" in coverage["note"]


def test_summary_before_any_run(make_workspace: MakeWorkspace, tmp_path: Path) -> None:
    ctx = make_workspace(tmp_path)
    summary = selectors.test_summary(workspace_id=ctx.workspace.id)
    assert (summary["runs"], summary["latest"], summary["coverage"]["available"]) == (0, None, False)
    assert selectors.test_run_latest(workspace_id=ctx.workspace.id) is None


def add_run(workspace_id: int, minutes_ago: int, outcome: str, **fields: Any) -> TestRun:
    fields.setdefault("command", "pytest -q")
    return TestRun.objects.create(
        workspace_id=workspace_id, outcome=outcome, started_at=timezone.now() - timedelta(minutes=minutes_ago), **fields
    )


def test_history_is_newest_first_and_limited(make_workspace: MakeWorkspace, tmp_path: Path) -> None:
    ctx = make_workspace(tmp_path)
    other = make_workspace(tmp_path / "other")
    old = add_run(ctx.workspace.id, 30, "failed", passed=1, failed=1)
    new = add_run(ctx.workspace.id, 1, "passed", passed=2, failed=0)
    middle = add_run(ctx.workspace.id, 10, "error")
    add_run(other.workspace.id, 0, "passed")
    history = selectors.test_run_history(workspace_id=ctx.workspace.id)
    assert [row["id"] for row in history] == [new.pk, middle.pk, old.pk]
    assert "output_tail" not in history[0]
    assert [row["id"] for row in selectors.test_run_history(workspace_id=ctx.workspace.id, limit=2)] == [
        new.pk,
        middle.pk,
    ]
    latest = selectors.test_run_latest(workspace_id=ctx.workspace.id)
    assert latest is not None and latest["id"] == new.pk and "output_tail" in latest


def test_summary_trend_against_the_previous_run(make_workspace: MakeWorkspace, tmp_path: Path) -> None:
    ctx = make_workspace(tmp_path)
    add_run(ctx.workspace.id, 10, "failed", passed=8, failed=2, coverage_percent=70.0, duration_seconds=3.0)
    add_run(ctx.workspace.id, 1, "passed", passed=10, failed=0, coverage_percent=72.5, duration_seconds=2.5)
    trend = selectors.test_summary(workspace_id=ctx.workspace.id)["trend"]
    assert trend["previous_outcome"] == "failed"
    assert trend["direction"] == "better"
    assert (trend["passed_delta"], trend["failed_delta"], trend["coverage_delta"], trend["duration_delta"]) == (
        2,
        -2,
        2.5,
        -0.5,
    )


def test_flaky_hints_when_the_same_tree_flips(make_workspace: MakeWorkspace, tmp_path: Path) -> None:
    ctx = make_workspace(tmp_path)
    tree = "a" * 64
    for minutes, outcome in ((40, "passed"), (30, "failed"), (20, "passed"), (10, "failed")):
        add_run(ctx.workspace.id, minutes, outcome, tree_state=tree, passed=1, failed=int(outcome == "failed"))
    add_run(ctx.workspace.id, 50, "passed", command="other command")
    hints = selectors.test_summary(workspace_id=ctx.workspace.id)["flaky_hints"]
    assert len(hints) == 2
    assert "same tree (aaaaaaaaaaaa)" in hints[0]
    assert "changed outcome 3 times in its last 4 runs" in hints[1]


def test_no_flaky_hint_for_a_fix(make_workspace: MakeWorkspace, tmp_path: Path) -> None:
    ctx = make_workspace(tmp_path)
    add_run(ctx.workspace.id, 20, "failed", tree_state="a" * 64)
    add_run(ctx.workspace.id, 10, "passed", tree_state="b" * 64)
    summary = selectors.test_summary(workspace_id=ctx.workspace.id)
    assert summary["flaky_hints"] == []
    assert summary["trend"]["direction"] == "better"


def test_dotenv_and_secret_files_are_hidden_from_sandboxed_tests(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from workspace.testing.service import _hidden_paths

    dotenv = tmp_path / "lynkr.env"
    dotenv.write_text("OPENAI_API_KEY=sk-secret\n")
    secret = tmp_path / "db-password"
    secret.write_text("hunter2")
    monkeypatch.setenv("LYNKR_ENV_FILE", str(dotenv))
    monkeypatch.setenv("DATABASE_PASSWORD_FILE", str(secret))
    monkeypatch.setenv("MISSING_FILE", str(tmp_path / "nope"))
    hidden = _hidden_paths()
    assert dotenv in hidden and secret in hidden and tmp_path / "nope" not in hidden
