"""Reads of the task tracker. A user sees only their own tasks in a workspace; anyone else's is "not found"."""

from __future__ import annotations

from typing import TypedDict

from tasks_app.models import Task

MAX_LIST_LIMIT = 200


class TaskNotFound(LookupError):
    """No such task for this user in this workspace; the message never says whether it exists for someone else."""

    def __init__(self, task_id: int) -> None:
        super().__init__(f"task {task_id} not found")
        self.task_id = task_id


class TaskData(TypedDict):
    id: int
    workspace_id: int
    title: str
    description: str
    status: str
    priority: str
    tags: list[str]
    created_at: str
    updated_at: str


def task_data(task: Task) -> TaskData:
    return TaskData(
        id=task.pk,
        workspace_id=task.workspace_id,
        title=task.title,
        description=task.description,
        status=task.status,
        priority=task.priority,
        tags=[str(tag) for tag in (task.tags or [])],
        created_at=task.created_at.isoformat(),
        updated_at=task.updated_at.isoformat(),
    )


def task_get_row(*, task_id: int, workspace_id: int, user_id: int, for_update: bool = False) -> Task:
    """The row itself, for services; ``for_update`` locks it (inside a transaction)."""
    rows = Task.objects.filter(pk=task_id, workspace_id=workspace_id, user_id=user_id)
    if for_update:
        rows = rows.select_for_update()
    task = rows.first()
    if task is None:
        raise TaskNotFound(task_id)
    return task


def task_get(*, task_id: int, workspace_id: int, user_id: int) -> TaskData:
    return task_data(task_get_row(task_id=task_id, workspace_id=workspace_id, user_id=user_id))


def task_list(
    *, workspace_id: int, user_id: int, status: str | None = None, tag: str | None = None, limit: int = 50
) -> list[TaskData]:
    """The user's tasks in the workspace, most recently updated first, optionally one status and one tag."""
    limit = max(1, min(int(limit), MAX_LIST_LIMIT))
    rows = Task.objects.filter(workspace_id=workspace_id, user_id=user_id).order_by("-updated_at", "-pk")
    if status:
        rows = rows.filter(status=status)
    if not tag:
        return [task_data(task) for task in rows[:limit]]
    # Tags are a JSON list; the JSONField "contains" lookup is not supported on SQLite, so the tag filter runs
    # here. A user's task list in one workspace is small, and the loop stops at the limit.
    wanted = tag.strip().lower()
    found: list[TaskData] = []
    for task in rows.iterator():
        if any(str(value).lower() == wanted for value in (task.tags or [])):
            found.append(task_data(task))
            if len(found) == limit:
                break
    return found
