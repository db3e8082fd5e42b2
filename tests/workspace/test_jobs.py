"""Jobs: start, progress, cancel and outcome, through the Celery task wrapper run in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from workspace import tasks
from workspace.jobs import JobCancelled, JobProgress, job_cancel, job_create, job_enqueue, job_start
from workspace.models import JobKind, JobRun, JobStatus, Workspace

pytestmark = pytest.mark.django_db


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.objects.create(name="w", root_path=str(tmp_path))


def test_success_records_result_and_progress(ws: Workspace) -> None:
    job_id = job_create(workspace_id=ws.pk, kind=JobKind.INDEX_REBUILD)

    def work(workspace_id: int, progress: Any) -> dict[str, Any]:
        assert workspace_id == ws.pk
        assert JobRun.objects.get(pk=job_id).status == JobStatus.RUNNING
        progress.update(3, 3, "all done")
        return {"files": 3, "message": "indexed 3 files"}

    assert tasks._run_job(job_id, work) == JobStatus.SUCCEEDED
    job = JobRun.objects.get(pk=job_id)
    assert (job.status, job.progress_done, job.progress_total) == (JobStatus.SUCCEEDED, 3, 3)
    assert job.result["files"] == 3 and job.message == "indexed 3 files" and job.finished_at is not None


def test_failure_is_recorded_not_raised(ws: Workspace) -> None:
    job_id = job_create(workspace_id=ws.pk, kind=JobKind.TEST_RUN)

    def work(workspace_id: int, progress: Any) -> dict[str, Any]:
        raise RuntimeError("boom")

    assert tasks._run_job(job_id, work) == JobStatus.FAILED
    job = JobRun.objects.get(pk=job_id)
    assert job.status == JobStatus.FAILED and "boom" in job.message


def test_cancel_before_start_and_while_running(ws: Workspace) -> None:
    queued = job_create(workspace_id=ws.pk, kind=JobKind.INDEX_REBUILD)
    assert job_cancel(job_id=queued)
    assert tasks._run_job(queued, lambda w, p: pytest.fail("must not run")) == JobStatus.CANCELLED
    assert JobRun.objects.get(pk=queued).status == JobStatus.CANCELLED
    assert not job_cancel(job_id=queued)  # already over

    running = job_create(workspace_id=ws.pk, kind=JobKind.INDEX_REBUILD)

    def work(workspace_id: int, progress: Any) -> dict[str, Any]:
        progress.interval = 0
        progress.check_cancelled()  # not yet
        job_cancel(job_id=running)
        progress.check_cancelled()
        pytest.fail("cancel flag not seen")

    assert tasks._run_job(running, work) == JobStatus.CANCELLED
    assert JobRun.objects.get(pk=running).status == JobStatus.CANCELLED


def test_progress_writes_are_throttled_but_the_last_one_lands(ws: Workspace) -> None:
    job_id = job_create(workspace_id=ws.pk, kind=JobKind.INDEX_REBUILD)
    assert job_start(job_id=job_id)
    progress = JobProgress(job_id, interval=3600)
    progress.update(1, 10)
    progress.update(5, 10)  # throttled
    assert JobRun.objects.get(pk=job_id).progress_done == 1
    progress.update(10, 10)  # the final update always lands
    assert JobRun.objects.get(pk=job_id).progress_done == 10
    with pytest.raises(JobCancelled):
        job_cancel(job_id=job_id)
        JobProgress(job_id, interval=0).check_cancelled()


def test_enqueue_sends_the_task_after_commit(
    ws: Workspace, django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    sent: list[tuple[str, int]] = []

    class Result:
        id = "celery-id-1"

    for name in ("index_rebuild", "test_run", "git_fetch"):
        monkeypatch.setattr(
            getattr(tasks, name), "delay", lambda job_id, name=name: sent.append((name, job_id)) or Result()
        )
    with django_capture_on_commit_callbacks(execute=True):
        job_id = job_enqueue(workspace_id=ws.pk, kind=JobKind.TEST_RUN, user_id=None)
        assert sent == []
    assert sent == [("test_run", job_id)]
    assert JobRun.objects.get(pk=job_id).celery_task_id == "celery-id-1"
