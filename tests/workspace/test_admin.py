"""Workspace admin: add with a schedule, queue jobs, see progress, cancel; index and test tables read-only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from workspace import tasks
from workspace.models import IndexedFile, JobKind, JobRun, JobStatus, TestRun, Workspace

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client: Client) -> Client:
    User.objects.create_superuser(username="boss", password="x" * 16)
    client.login(username="boss", password="x" * 16)
    return client


@pytest.fixture
def sent(monkeypatch: Any) -> list[tuple[str, int]]:
    calls: list[tuple[str, int]] = []

    class Result:
        id = "task-id"

    for name in ("index_rebuild", "test_run", "git_fetch"):
        monkeypatch.setattr(getattr(tasks, name), "delay", lambda job_id, n=name: calls.append((n, job_id)) or Result())
    return calls


def _form(tmp_path: Path, **fields: Any) -> dict[str, Any]:
    data = {
        "name": "proj",
        "root_path": str(tmp_path),
        "test_timeout_seconds": "600",
        "test_sandbox": "auto",
        "coverage_files": "[]",
        "ignore_globs": "[]",
        "reindex_interval_minutes": "15",
        "enabled": "on",
        "grants-TOTAL_FORMS": "0",
        "grants-INITIAL_FORMS": "0",
        "grants-MIN_NUM_FORMS": "0",
        "grants-MAX_NUM_FORMS": "1000",
    }
    data.update(fields)
    return data


def test_add_workspace_creates_its_reindex_schedule(staff: Client, tmp_path: Path) -> None:
    response = staff.post("/admin/workspace/workspace/add/", _form(tmp_path), follow=True)
    assert response.status_code == 200, response.content[:2000]
    workspace = Workspace.objects.get(name="proj")
    assert workspace.reindex_task is not None and workspace.reindex_task.interval.every == 15


def test_actions_queue_jobs_and_jobs_show_progress_and_cancel(
    staff: Client, tmp_path: Path, sent: list[tuple[str, int]], django_capture_on_commit_callbacks: Any
) -> None:
    workspace = Workspace.objects.create(name="proj", root_path=str(tmp_path))
    with django_capture_on_commit_callbacks(execute=True):
        for action in ("rebuild_index", "run_tests", "fetch_remote"):
            staff.post("/admin/workspace/workspace/", {"action": action, "_selected_action": [workspace.pk]})
    # The workspace has no remote: fetch is skipped with a warning, the other two are queued.
    assert [name for name, _ in sent] == ["index_rebuild", "test_run"]
    job = JobRun.objects.get(kind=JobKind.INDEX_REBUILD)
    JobRun.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, progress_done=30, progress_total=120)
    page = staff.get("/admin/workspace/jobrun/").content.decode()
    assert '<progress max="100" value="25"' in page and "25%" in page
    staff.post("/admin/workspace/jobrun/", {"action": "cancel", "_selected_action": [job.pk]})
    assert JobRun.objects.get(pk=job.pk).cancel_requested


def test_index_and_test_tables_are_read_only(staff: Client, tmp_path: Path) -> None:
    workspace = Workspace.objects.create(name="proj", root_path=str(tmp_path))
    row = IndexedFile.objects.create(workspace=workspace, path="a.py", content_hash="0" * 64)
    run = TestRun.objects.create(workspace=workspace, command="pytest", outcome="passed")
    assert staff.get("/admin/workspace/indexedfile/add/").status_code == 403
    assert staff.get("/admin/workspace/testrun/add/").status_code == 403
    detail = staff.get(f"/admin/workspace/indexedfile/{row.pk}/change/")
    assert detail.status_code == 200 and b'name="path"' not in detail.content
    assert staff.get(f"/admin/workspace/testrun/{run.pk}/change/").status_code == 200
