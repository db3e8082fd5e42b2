"""The Task admin: the change list with its filters and search, and the edit form."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from tasks_app.models import Task
from workspace.models import Workspace


def test_changelist_search_filter_and_edit(admin_client: Any, admin_user: Any) -> None:
    workspace = Workspace.objects.create(name="admin-ws")
    Task.objects.create(workspace=workspace, user=admin_user, title="Fix the parser", description="tree-sitter")
    other = Task.objects.create(workspace=workspace, user=admin_user, title="Write docs", status="done")
    url = reverse("admin:tasks_app_task_changelist")
    page = admin_client.get(url, {"q": "tree-sitter"})
    assert page.status_code == 200
    assert b"Fix the parser" in page.content and b"Write docs" not in page.content
    done = admin_client.get(url, {"status__exact": "done", "workspace__id__exact": workspace.pk})
    assert b"Write docs" in done.content and b"Fix the parser" not in done.content
    edit = admin_client.get(reverse("admin:tasks_app_task_change", args=[other.pk]))
    assert edit.status_code == 200 and b'name="priority"' in edit.content
