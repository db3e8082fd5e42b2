"""Writes of the task tracker: create, update, change status, delete; always scoped to (workspace, user)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.db import transaction

from tasks_app.models import Task, TaskPriority, TaskStatus
from tasks_app.selectors import TaskData, task_data, task_get_row

logger = logging.getLogger(__name__)

MAX_TITLE_CHARS = 300  # Task.title's max_length
MAX_DESCRIPTION_CHARS = 20_000
MAX_TAGS = 20
MAX_TAG_CHARS = 50
UPDATABLE_FIELDS = frozenset({"title", "description", "priority", "status", "tags"})


class TaskInvalid(ValueError):
    """A field value the tracker refuses; the message is safe to show the model."""


def _clean_title(value: Any) -> str:
    title = str(value).strip()
    if not title:
        raise TaskInvalid("title cannot be empty")
    if len(title) > MAX_TITLE_CHARS:
        raise TaskInvalid(f"title is longer than {MAX_TITLE_CHARS} characters")
    return title


def _clean_description(value: Any) -> str:
    description = str(value)
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise TaskInvalid(f"description is longer than {MAX_DESCRIPTION_CHARS} characters")
    return description


def _clean_choice(value: Any, choices: type[TaskStatus] | type[TaskPriority], label: str) -> str:
    text = str(value)
    if text not in choices.values:
        raise TaskInvalid(f"{label} must be one of {', '.join(choices.values)}")
    return text


def _clean_tags(value: Iterable[Any]) -> list[str]:
    if isinstance(value, str):
        raise TaskInvalid("tags must be a list of strings")
    tags: list[str] = []
    for raw in value:
        tag = str(raw).strip()
        if not tag:
            continue
        if len(tag) > MAX_TAG_CHARS:
            raise TaskInvalid(f"tag {tag[:20]!r}... is longer than {MAX_TAG_CHARS} characters")
        if tag.lower() not in (existing.lower() for existing in tags):
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise TaskInvalid(f"at most {MAX_TAGS} tags")
    return tags


def task_create(
    *,
    workspace_id: int,
    user_id: int,
    title: str,
    description: str = "",
    priority: str = TaskPriority.MEDIUM,
    tags: Iterable[str] = (),
) -> TaskData:
    task = Task.objects.create(
        workspace_id=workspace_id,
        user_id=user_id,
        title=_clean_title(title),
        description=_clean_description(description),
        priority=_clean_choice(priority, TaskPriority, "priority"),
        tags=_clean_tags(tags),
    )
    logger.info("task %s created in workspace %s by user %s", task.pk, workspace_id, user_id)
    return task_data(task)


def task_update(*, task_id: int, workspace_id: int, user_id: int, **fields: Any) -> TaskData:
    """Change any of title, description, priority, status, tags; other names are refused."""
    unknown = sorted(set(fields) - UPDATABLE_FIELDS)
    if unknown:
        raise TaskInvalid(f"cannot update {', '.join(unknown)}; updatable: {', '.join(sorted(UPDATABLE_FIELDS))}")
    if not fields:
        raise TaskInvalid("nothing to update")
    cleaned: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "title":
            cleaned[name] = _clean_title(value)
        elif name == "description":
            cleaned[name] = _clean_description(value)
        elif name == "priority":
            cleaned[name] = _clean_choice(value, TaskPriority, "priority")
        elif name == "status":
            cleaned[name] = _clean_choice(value, TaskStatus, "status")
        else:
            cleaned[name] = _clean_tags(value)
    with transaction.atomic():
        task = task_get_row(task_id=task_id, workspace_id=workspace_id, user_id=user_id, for_update=True)
        for name, value in cleaned.items():
            setattr(task, name, value)
        task.save(update_fields=[*cleaned, "updated_at"])
    return task_data(task)


def task_set_status(*, task_id: int, workspace_id: int, user_id: int, status: str) -> TaskData:
    return task_update(task_id=task_id, workspace_id=workspace_id, user_id=user_id, status=status)


def task_delete(*, task_id: int, workspace_id: int, user_id: int) -> TaskData:
    """Delete the task; returns what it was (the model can quote it back)."""
    with transaction.atomic():
        task = task_get_row(task_id=task_id, workspace_id=workspace_id, user_id=user_id, for_update=True)
        data = task_data(task)
        task.delete()
    logger.info("task %s deleted in workspace %s by user %s", task_id, workspace_id, user_id)
    return data
