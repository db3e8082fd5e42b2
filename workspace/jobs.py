"""Long jobs on a workspace (index rebuild, test run, git fetch): progress, cancellation, outcome.

A job is a ``JobRun`` row; the Celery task (workspace/tasks.py) runs the service with a ``JobProgress`` that
writes progress at most every ``interval`` seconds and reads the cancel flag as it goes. The same services run
inline (``lynkr index``) with any other ``Progress``, e.g. a tqdm bar.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from django.db import transaction
from django.utils import timezone

from workspace.models import JobKind, JobRun, JobStatus


class JobCancelled(Exception):
    """Raised inside a job when its cancel flag is seen."""


class Progress(Protocol):
    def update(self, done: int, total: int, message: str = "") -> None: ...

    def check_cancelled(self) -> None:
        """Raise JobCancelled if the job was asked to stop."""


class NullProgress:
    def update(self, done: int, total: int, message: str = "") -> None:
        return None

    def check_cancelled(self) -> None:
        return None


class JobProgress:
    """Progress of one JobRun, written to the database at most every ``interval`` seconds."""

    def __init__(self, job_id: int, *, interval: float = 0.5) -> None:
        self.job_id = job_id
        self.interval = interval
        self._last_write = float("-inf")
        self._last_check = float("-inf")

    def update(self, done: int, total: int, message: str = "") -> None:
        now = time.monotonic()
        if now - self._last_write < self.interval and done < total:
            return
        self._last_write = now
        fields: dict[str, Any] = {"progress_done": done, "progress_total": total}
        if message:
            fields["message"] = message[:500]
        JobRun.objects.filter(pk=self.job_id).update(**fields)

    def check_cancelled(self) -> None:
        now = time.monotonic()
        if now - self._last_check < self.interval:
            return
        self._last_check = now
        if JobRun.objects.filter(pk=self.job_id, cancel_requested=True).exists():
            raise JobCancelled(f"job {self.job_id} was cancelled")


def job_create(*, workspace_id: int, kind: JobKind | str, user_id: int | None = None) -> int:
    job = JobRun.objects.create(workspace_id=workspace_id, kind=kind, requested_by_id=user_id)
    return job.pk


def job_enqueue(*, workspace_id: int, kind: JobKind | str, user_id: int | None = None) -> int:
    """Create a job and queue its Celery task once the row is committed (house style)."""
    from workspace import tasks

    task = {
        JobKind.INDEX_REBUILD: tasks.index_rebuild,
        JobKind.TEST_RUN: tasks.test_run,
        JobKind.GIT_FETCH: tasks.git_fetch,
    }[JobKind(kind)]
    job_id = job_create(workspace_id=workspace_id, kind=kind, user_id=user_id)

    def send() -> None:
        result = task.delay(job_id)
        JobRun.objects.filter(pk=job_id, celery_task_id="").update(celery_task_id=result.id or "")

    transaction.on_commit(send)
    return job_id


def job_start(*, job_id: int) -> bool:
    """Mark running; False when it was cancelled before a worker picked it up."""
    updated = JobRun.objects.filter(pk=job_id, status=JobStatus.QUEUED, cancel_requested=False).update(
        status=JobStatus.RUNNING, started_at=timezone.now()
    )
    if not updated:
        JobRun.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
            status=JobStatus.CANCELLED, finished_at=timezone.now(), message="cancelled before it started"
        )
    return bool(updated)


def job_finish(*, job_id: int, status: JobStatus, message: str = "", result: dict[str, Any] | None = None) -> None:
    fields: dict[str, Any] = {"status": status, "finished_at": timezone.now(), "message": message[:500]}
    if result is not None:
        fields["result"] = result
    JobRun.objects.filter(pk=job_id).update(**fields)


def job_cancel(*, job_id: int) -> bool:
    """Ask a queued or running job to stop. The worker sees the flag within a second; a queued job never starts."""
    updated = JobRun.objects.filter(pk=job_id, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).update(
        cancel_requested=True
    )
    return bool(updated)
