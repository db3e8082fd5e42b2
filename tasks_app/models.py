"""The task tracker behind the workspace_task_* tools: tasks belong to a workspace and a user."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class TaskStatus(models.TextChoices):
    TODO = "todo", "to do"
    IN_PROGRESS = "in_progress", "in progress"
    BLOCKED = "blocked", "blocked"
    DONE = "done", "done"
    CANCELLED = "cancelled", "cancelled"


class TaskPriority(models.TextChoices):
    LOW = "low", "low"
    MEDIUM = "medium", "medium"
    HIGH = "high", "high"
    URGENT = "urgent", "urgent"


class Task(models.Model):
    workspace = models.ForeignKey("workspace.Workspace", on_delete=models.CASCADE, related_name="tasks")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="workspace_tasks")
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default=TaskStatus.TODO)
    priority = models.CharField(max_length=8, choices=TaskPriority.choices, default=TaskPriority.MEDIUM)
    tags = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["workspace", "user", "status"])]

    def __str__(self) -> str:
        return self.title
