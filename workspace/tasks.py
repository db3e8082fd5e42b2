"""Celery tasks of the workspace app: thin wrappers that run a service under a JobRun (progress, cancel)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import shared_task

logger = logging.getLogger(__name__)


def _run_job(job_id: int, work: Callable[[int, Any], dict[str, Any]]) -> str:
    """Start the job, run ``work(workspace_id, progress)``, record the outcome; never leaves a job 'running'."""
    from workspace.jobs import JobCancelled, JobProgress, job_finish, job_start
    from workspace.models import JobRun, JobStatus

    if not job_start(job_id=job_id):
        return JobStatus.CANCELLED
    workspace_id = JobRun.objects.values_list("workspace_id", flat=True).get(pk=job_id)
    try:
        result = work(workspace_id, JobProgress(job_id))
    except JobCancelled:
        job_finish(job_id=job_id, status=JobStatus.CANCELLED, message="cancelled")
        return JobStatus.CANCELLED
    except Exception as exc:
        logger.exception("job %s failed", job_id)
        job_finish(job_id=job_id, status=JobStatus.FAILED, message=f"{type(exc).__name__}: {exc}")
        return JobStatus.FAILED
    job_finish(job_id=job_id, status=JobStatus.SUCCEEDED, message=str(result.get("message", "done")), result=result)
    return JobStatus.SUCCEEDED


@shared_task(name="workspace.index_rebuild")
def index_rebuild(job_id: int) -> str:
    from workspace.indexer import index_rebuild as rebuild

    return _run_job(job_id, lambda workspace_id, progress: rebuild(workspace_id=workspace_id, progress=progress))


@shared_task(name="workspace.test_run")
def test_run(job_id: int) -> str:
    from workspace.models import JobRun
    from workspace.testing.service import test_run_execute

    def work(workspace_id: int, progress: Any) -> dict[str, Any]:
        user_id = JobRun.objects.values_list("requested_by_id", flat=True).get(pk=job_id)
        run_id = test_run_execute(workspace_id=workspace_id, job_id=job_id, user_id=user_id, progress=progress)
        from workspace.models import TestRun

        run = TestRun.objects.get(pk=run_id)
        return {
            "test_run_id": run_id,
            "outcome": run.outcome,
            "passed": run.passed,
            "failed": run.failed,
            "message": f"tests {run.outcome}",
        }

    return _run_job(job_id, work)


@shared_task(name="workspace.git_fetch")
def git_fetch(job_id: int) -> str:
    from workspace.gitops import workspace_git_fetch

    return _run_job(
        job_id, lambda workspace_id, progress: workspace_git_fetch(workspace_id=workspace_id, progress=progress)
    )


@shared_task(name="workspace.reindex")
def reindex(workspace_id: int) -> str:
    """Beat's target (one periodic task per workspace): fetch the remote if there is one, then index."""
    from workspace.jobs import job_create
    from workspace.models import JobKind, Workspace

    workspace = Workspace.objects.filter(pk=workspace_id, enabled=True).first()
    if workspace is None:
        return "skipped"
    if workspace.git_remote:
        git_fetch(job_create(workspace_id=workspace_id, kind=JobKind.GIT_FETCH))
    return str(index_rebuild(job_create(workspace_id=workspace_id, kind=JobKind.INDEX_REBUILD)))
