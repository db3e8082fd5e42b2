from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from workspace.info import ToolContext
from workspace.models import JobRun, TestRun
from workspace.tools import registry
from workspace.tools.registry import ToolError, tool_call

MakeWorkspace = Callable[..., ToolContext]

SCRIPT = """
import pathlib, sys
pathlib.Path("coverage.xml").write_text('<coverage line-rate="0.5" branch-rate="0"/>')
print("x" * 20000)
print("=== 1 failed, 4 passed, 1 skipped in 0.05s ===")
sys.exit(1)
"""


@pytest.fixture(autouse=True)
def only_testing_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register just this module's tools, so these tests do not depend on every other tool module importing."""
    import workspace.tools.testing  # noqa: F401  (registers the tools)

    monkeypatch.setattr(registry, "_loaded", True)


def workspace(make_workspace: MakeWorkspace, root: Path, **fields: Any) -> ToolContext:
    root.mkdir(parents=True, exist_ok=True)
    (root / "check.py").write_text(SCRIPT)
    fields.setdefault("test_command", f"{sys.executable} check.py")
    return make_workspace(root, **fields)


def test_run_queues_a_job_by_default(
    make_workspace: MakeWorkspace, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    ctx = workspace(make_workspace, tmp_path)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = tool_call(name="workspace_test_run", arguments={}, context=ctx)
    assert result["status"] == "queued"
    job = JobRun.objects.get(pk=result["job_id"])
    assert (job.kind, job.status, job.workspace_id, job.requested_by_id) == (
        "test_run",
        "queued",
        ctx.workspace.id,
        ctx.user_id,
    )
    assert len(callbacks) == 1  # the Celery task is sent only once the row is committed
    assert not TestRun.objects.exists()


def test_run_with_wait_returns_the_result(make_workspace: MakeWorkspace, tmp_path: Path) -> None:
    ctx = workspace(make_workspace, tmp_path, test_sandbox="none")
    result = tool_call(name="workspace_test_run", arguments={"wait": True}, context=ctx)
    assert result["outcome"] == "failed"
    assert (result["passed"], result["failed"], result["skipped"], result["total"]) == (4, 1, 1, 6)
    assert result["coverage"]["percent"] == 50.0
    assert result["output_tail"].startswith("[... ")  # cut to the end the model needs
    assert result["output_tail"].rstrip().endswith("in 0.05s ===")
    assert TestRun.objects.get(pk=result["id"]).outcome == "failed"


def test_run_without_a_test_command_is_a_tool_error(
    make_workspace: MakeWorkspace, tmp_path: Path, settings: Any
) -> None:
    settings.LYNKR_WORKSPACE_TEST_COMMAND = ""
    ctx = make_workspace(tmp_path)
    for wait in (False, True):
        with pytest.raises(ToolError, match="no test command"):
            tool_call(name="workspace_test_run", arguments={"wait": wait}, context=ctx)
    assert not JobRun.objects.exists()


def test_arguments_are_validated(make_workspace: MakeWorkspace, tmp_path: Path) -> None:
    ctx = workspace(make_workspace, tmp_path)
    with pytest.raises(ToolError, match="Additional properties"):
        tool_call(name="workspace_test_run", arguments={"command": "rm -rf /"}, context=ctx)
    with pytest.raises(ToolError, match="limit"):
        tool_call(name="workspace_test_history", arguments={"limit": 0}, context=ctx)
    with pytest.raises(ToolError, match="Additional properties"):
        tool_call(name="workspace_test_summary", arguments={"x": 1}, context=ctx)


def test_history_and_summary(make_workspace: MakeWorkspace, tmp_path: Path) -> None:
    ctx = workspace(make_workspace, tmp_path, test_sandbox="none")
    empty = tool_call(name="workspace_test_summary", arguments={}, context=ctx)
    assert (empty["runs"], empty["latest"], empty["coverage"]["note"]) == (0, None, "no test run yet")
    first = tool_call(name="workspace_test_run", arguments={"wait": True}, context=ctx)
    second = tool_call(name="workspace_test_run", arguments={"wait": True}, context=ctx)
    history = tool_call(name="workspace_test_history", arguments={"limit": 5}, context=ctx)
    assert [row["id"] for row in history["runs"]] == [second["id"], first["id"]]
    assert history["count"] == 2
    summary = tool_call(name="workspace_test_summary", arguments={}, context=ctx)
    assert summary["latest"]["id"] == second["id"]
    assert summary["trend"]["direction"] == "same"
    assert summary["coverage"]["source"] == "coverage.xml"
    assert summary["test_command"] == ctx.workspace.test_command


def test_tools_are_registered_with_strict_schemas() -> None:
    specs = {name: spec for name, spec in registry._registry.items() if name.startswith("workspace_test_")}
    assert set(specs) == {"workspace_test_run", "workspace_test_history", "workspace_test_summary"}
    assert all(spec.input_schema["additionalProperties"] is False for spec in specs.values())
    assert specs["workspace_test_run"].mutates is True
