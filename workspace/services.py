"""Writes for workspaces: the WORKSPACE_ROOT bootstrap and the per-workspace reindex schedule."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from workspace.models import Workspace

logger = logging.getLogger(__name__)

BOOTSTRAP_NAME = "default"


def workspace_bootstrap_from_env(*, root: str) -> str | None:
    """Lynkr compatibility: WORKSPACE_ROOT becomes a workspace named "default" open to every user.

    Created once; an admin's later edits (root, policy, sharing) are kept. Returns the name when created.
    """
    if not root:
        return None
    path = Path(root).expanduser()
    if not path.is_dir():
        logger.warning("WORKSPACE_ROOT=%s is not a directory; no default workspace created", root)
        return None
    _, created = Workspace.objects.get_or_create(
        name=BOOTSTRAP_NAME, defaults={"root_path": str(path.resolve()), "shared_with_everyone": True}
    )
    return BOOTSTRAP_NAME if created else None


@transaction.atomic
def workspace_schedule_sync(*, workspace_id: int) -> PeriodicTask | None:
    """Create, update or remove the beat entry that reindexes a workspace every ``reindex_interval_minutes``.

    The entry is an ordinary django-celery-beat PeriodicTask: an admin can switch it to a crontab there; we only
    touch its interval when the workspace's interval changes.
    """
    workspace = Workspace.objects.select_for_update().get(pk=workspace_id)
    # Found by its arguments too: a stale Workspace instance saved elsewhere may have cleared the link.
    task = (
        workspace.reindex_task
        or PeriodicTask.objects.filter(task="workspace.reindex", args=json.dumps([workspace.pk])).first()
    )
    minutes = workspace.reindex_interval_minutes
    if not minutes:
        if task is not None:
            task.delete()  # SET_NULL clears workspace.reindex_task
        return None
    interval, _ = IntervalSchedule.objects.get_or_create(every=minutes, period=IntervalSchedule.MINUTES)
    if task is None:
        task = PeriodicTask.objects.create(
            name=f"reindex workspace {workspace.name} (#{workspace.pk})",
            task="workspace.reindex",
            args=json.dumps([workspace.pk]),
            interval=interval,
        )
        workspace.reindex_task = task
        workspace.save(update_fields=["reindex_task"])
    else:
        if task.interval_id != interval.pk and task.crontab_id is None:
            task.interval = interval
            task.save()
        if workspace.reindex_task_id != task.pk:
            workspace.reindex_task = task
            workspace.save(update_fields=["reindex_task"])
    return task
