"""WORKSPACE_ROOT bootstrap and the per-workspace reindex schedule (django-celery-beat rows)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from workspace.models import Workspace
from workspace.services import workspace_bootstrap_from_env, workspace_schedule_sync

pytestmark = pytest.mark.django_db


def test_bootstrap_creates_a_shared_default_once(tmp_path: Path) -> None:
    assert workspace_bootstrap_from_env(root="") is None
    assert workspace_bootstrap_from_env(root=str(tmp_path / "missing")) is None
    assert workspace_bootstrap_from_env(root=str(tmp_path)) == "default"
    row = Workspace.objects.get(name="default")
    assert row.shared_with_everyone and row.root_path == str(tmp_path.resolve())
    row.shared_with_everyone = False  # an admin's edit survives the next start
    row.save()
    assert workspace_bootstrap_from_env(root=str(tmp_path)) is None
    assert not Workspace.objects.get(name="default").shared_with_everyone


def test_schedule_created_updated_and_removed(tmp_path: Path) -> None:
    ws = Workspace.objects.create(name="w", root_path=str(tmp_path))
    assert workspace_schedule_sync(workspace_id=ws.pk) is None
    ws.reindex_interval_minutes = 30
    ws.save()
    task = workspace_schedule_sync(workspace_id=ws.pk)
    assert task is not None
    assert task.task == "workspace.reindex" and json.loads(task.args) == [ws.pk]
    assert (task.interval.every, task.interval.period) == (30, IntervalSchedule.MINUTES)
    ws.reindex_interval_minutes = 5
    ws.save()
    same = workspace_schedule_sync(workspace_id=ws.pk)
    assert same is not None and same.pk == task.pk and same.interval.every == 5
    ws.reindex_interval_minutes = 0
    ws.save()
    assert workspace_schedule_sync(workspace_id=ws.pk) is None
    assert not PeriodicTask.objects.filter(pk=task.pk).exists()
    assert Workspace.objects.get(pk=ws.pk).reindex_task is None
