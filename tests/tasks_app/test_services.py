"""Task services and selectors called directly (the tools are thin wrappers over these)."""

from __future__ import annotations

from typing import Any

import pytest

from tasks_app.selectors import TaskNotFound, task_get, task_list
from tasks_app.services import TaskInvalid, task_create, task_delete, task_update
from workspace.models import Workspace


@pytest.fixture
def ids(db: Any, django_user_model: Any) -> tuple[int, int]:
    workspace = Workspace.objects.create(name="svc-ws")
    user = django_user_model.objects.create_user(username="carol", password="x")
    return workspace.pk, user.pk


def test_update_refuses_unknown_fields_and_nothing(ids: tuple[int, int]) -> None:
    workspace_id, user_id = ids
    task = task_create(workspace_id=workspace_id, user_id=user_id, title="t")
    with pytest.raises(TaskInvalid, match="cannot update created_at, user"):
        task_update(task_id=task["id"], workspace_id=workspace_id, user_id=user_id, user=2, created_at="2000")
    with pytest.raises(TaskInvalid, match="nothing to update"):
        task_update(task_id=task["id"], workspace_id=workspace_id, user_id=user_id)
    with pytest.raises(TaskInvalid, match="tags must be a list"):
        task_update(task_id=task["id"], workspace_id=workspace_id, user_id=user_id, tags="a,b")
    assert task_get(task_id=task["id"], workspace_id=workspace_id, user_id=user_id) == task


def test_delete_and_not_found(ids: tuple[int, int]) -> None:
    workspace_id, user_id = ids
    task = task_create(workspace_id=workspace_id, user_id=user_id, title="t", priority="urgent", tags=["x"])
    assert task_list(workspace_id=workspace_id, user_id=user_id, tag="X") == [task]
    assert task_delete(task_id=task["id"], workspace_id=workspace_id, user_id=user_id) == task
    with pytest.raises(TaskNotFound, match=f"task {task['id']} not found"):
        task_delete(task_id=task["id"], workspace_id=workspace_id, user_id=user_id)
