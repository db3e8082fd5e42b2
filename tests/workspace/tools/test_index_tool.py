"""workspace_index_rebuild: inline with wait=true, queued as a JobRun otherwise."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.workspace.repos import commit, make_repo
from workspace.info import ToolContext
from workspace.models import JobRun, Workspace
from workspace.tools.registry import ToolError, tool_call

pytestmark = pytest.mark.django_db


@pytest.fixture
def ctx(tmp_path: Path, make_workspace: Callable[..., ToolContext]) -> ToolContext:
    root = make_repo(tmp_path / "r", {"app.py": "def main():\n    pass\n", "README.md": "# r\n"})
    return make_workspace(root)


def test_wait_rebuilds_inline_and_returns_the_summary(ctx: ToolContext) -> None:
    result = tool_call(name="workspace_index_rebuild", arguments={"wait": True}, context=ctx)
    assert result["status"] == "done"
    assert (result["files"], result["parsed"], result["unchanged"], result["symbols"]) == (2, 2, 0, 1)
    assert result["parsers"] == {"tree-sitter": 1, "none": 1}
    assert Workspace.objects.get(pk=ctx.workspace.id).indexed_at is not None

    commit(ctx.workspace.root, {"app.py": "def main():\n    pass\n\n\ndef other():\n    pass\n"}, "feat: other")
    again = tool_call(name="workspace_index_rebuild", arguments={"wait": True}, context=ctx)
    assert (again["parsed"], again["unchanged"], again["symbols"]) == (1, 1, 2)
    full = tool_call(name="workspace_index_rebuild", arguments={"wait": True, "full": True}, context=ctx)
    assert (full["parsed"], full["unchanged"]) == (2, 0)
    assert not JobRun.objects.exists()


def test_default_queues_a_job_once_committed(ctx: ToolContext, django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = tool_call(name="workspace_index_rebuild", arguments={}, context=ctx)
    job = JobRun.objects.get()
    assert result == {"job_id": job.pk, "status": "queued"}
    assert (job.workspace_id, job.kind, job.status, job.requested_by_id) == (
        ctx.workspace.id,
        "index_rebuild",
        "queued",
        ctx.user_id,
    )
    assert len(callbacks) == 1  # the Celery send waits for the commit (not run here)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        second = tool_call(name="workspace_index_rebuild", arguments={"wait": False}, context=ctx)
    assert second["job_id"] == job.pk and second["status"] == "queued"
    assert JobRun.objects.count() == 1 and callbacks == []


def test_queued_path_calls_job_enqueue(ctx: ToolContext, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    def fake_enqueue(**kwargs: Any) -> int:
        calls.append(kwargs)
        return 4242

    monkeypatch.setattr("workspace.jobs.job_enqueue", fake_enqueue)
    result = tool_call(name="workspace_index_rebuild", arguments={"full": False}, context=ctx)
    assert result == {"job_id": 4242, "status": "queued"}
    assert calls == [{"workspace_id": ctx.workspace.id, "kind": "index_rebuild", "user_id": ctx.user_id}]


def test_missing_root_is_a_tool_error(ctx: ToolContext) -> None:
    shutil.rmtree(ctx.workspace.root)
    with pytest.raises(ToolError, match="does not exist"):
        tool_call(name="workspace_index_rebuild", arguments={"wait": True}, context=ctx)


def test_unknown_arguments_are_refused(ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match="invalid arguments"):
        tool_call(name="workspace_index_rebuild", arguments={"wait": "yes"}, context=ctx)


def test_wait_is_refused_while_a_worker_rebuilds(ctx: ToolContext) -> None:
    job = JobRun.objects.create(workspace_id=ctx.workspace.id, kind="index_rebuild", status="running")
    with pytest.raises(ToolError, match=f"running \\(job {job.pk}\\)"):
        tool_call(name="workspace_index_rebuild", arguments={"wait": True}, context=ctx)
    assert Workspace.objects.get(pk=ctx.workspace.id).indexed_at is None
    joined = tool_call(name="workspace_index_rebuild", arguments={}, context=ctx)
    assert joined["job_id"] == job.pk and joined["status"] == "running"
