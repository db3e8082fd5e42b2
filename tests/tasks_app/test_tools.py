"""The workspace_task_* tools through tool_call: CRUD, filters, validation, and isolation between users."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from tasks_app.models import Task
from workspace.info import ToolContext
from workspace.models import Workspace
from workspace.selectors import workspace_get_info
from workspace.tools import registry
from workspace.tools.registry import ToolError, tool_call


@pytest.fixture(autouse=True)
def _tools_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    import tasks_app.tools  # noqa: F401 - registers the tools

    monkeypatch.setattr(registry, "_loaded", True)


@pytest.fixture
def ctx(db: Any, django_user_model: Any, tmp_path: Path) -> ToolContext:
    workspace = Workspace.objects.create(name="tasks-ws", root_path=str(tmp_path))
    user = django_user_model.objects.create_user(username="alice", password="x")
    return ToolContext(workspace=workspace_get_info(workspace_id=workspace.pk), user_id=user.pk)


@pytest.fixture
def other(ctx: ToolContext, django_user_model: Any) -> ToolContext:
    """A second user of the same workspace."""
    bob = django_user_model.objects.create_user(username="bob", password="x")
    return dataclasses.replace(ctx, user_id=bob.pk)


def call(name: str, ctx: ToolContext, **arguments: Any) -> dict[str, Any]:
    return tool_call(name=name, arguments=arguments, context=ctx)


def test_crud(ctx: ToolContext) -> None:
    created = call(
        "workspace_task_create",
        ctx,
        title="  Write the parser  ",
        description="tree-sitter",
        tags=["index", "Index", "py"],
    )["task"]
    assert created["title"] == "Write the parser"
    assert (created["status"], created["priority"]) == ("todo", "medium")
    assert created["tags"] == ["index", "py"]  # duplicates (case-insensitive) dropped
    assert created["workspace_id"] == ctx.workspace.id
    assert created["created_at"].endswith("+00:00")  # ISO 8601 with the zone
    task_id = created["id"]

    assert call("workspace_task_get", ctx, task_id=task_id)["task"] == created

    updated = call("workspace_task_update", ctx, task_id=task_id, priority="high", tags=["parser"])["task"]
    assert (updated["priority"], updated["tags"], updated["title"]) == ("high", ["parser"], "Write the parser")
    assert updated["updated_at"] >= created["updated_at"]

    done = call("workspace_task_set_status", ctx, task_id=task_id, status="done")["task"]
    assert done["status"] == "done"
    assert Task.objects.get(pk=task_id).status == "done"

    deleted = call("workspace_task_delete", ctx, task_id=task_id)
    assert deleted["deleted"] is True and deleted["task"]["id"] == task_id
    assert not Task.objects.filter(pk=task_id).exists()
    with pytest.raises(ToolError, match=f"task {task_id} not found"):
        call("workspace_task_get", ctx, task_id=task_id)


def test_list_filters(ctx: ToolContext) -> None:
    first = call("workspace_task_create", ctx, title="one", tags=["bug"])["task"]
    second = call("workspace_task_create", ctx, title="two", tags=["feature"], priority="low")["task"]
    third = call("workspace_task_create", ctx, title="three", tags=["BUG", "ui"])["task"]
    call("workspace_task_set_status", ctx, task_id=second["id"], status="in_progress")

    everything = call("workspace_tasks_list", ctx)
    assert everything["count"] == 3
    assert [task["title"] for task in everything["tasks"]] == ["two", "three", "one"]  # last updated first
    assert [t["id"] for t in call("workspace_tasks_list", ctx, status="in_progress")["tasks"]] == [second["id"]]
    assert [t["id"] for t in call("workspace_tasks_list", ctx, tag="bug")["tasks"]] == [third["id"], first["id"]]
    assert [t["id"] for t in call("workspace_tasks_list", ctx, tag="bug", limit=1)["tasks"]] == [third["id"]]
    assert call("workspace_tasks_list", ctx, tag="bug", status="done")["tasks"] == []
    assert len(call("workspace_tasks_list", ctx, limit=2)["tasks"]) == 2


def test_isolation_between_users(ctx: ToolContext, other: ToolContext) -> None:
    mine = call("workspace_task_create", ctx, title="mine")["task"]
    theirs = call("workspace_task_create", other, title="theirs")["task"]
    assert [t["title"] for t in call("workspace_tasks_list", ctx)["tasks"]] == ["mine"]
    assert [t["title"] for t in call("workspace_tasks_list", other)["tasks"]] == ["theirs"]
    missing = 10_000_000
    for name, extra in [
        ("workspace_task_get", {}),
        ("workspace_task_update", {"title": "hijacked"}),
        ("workspace_task_set_status", {"status": "done"}),
        ("workspace_task_delete", {}),
    ]:
        # Another user's task reads exactly like a task that does not exist.
        with pytest.raises(ToolError, match=f"^task {theirs['id']} not found$"):
            call(name, ctx, task_id=theirs["id"], **extra)
        with pytest.raises(ToolError, match=f"^task {missing} not found$"):
            call(name, ctx, task_id=missing, **extra)
    untouched = Task.objects.get(pk=theirs["id"])
    assert (untouched.title, untouched.status) == ("theirs", "todo")
    assert call("workspace_task_get", ctx, task_id=mine["id"])["task"]["title"] == "mine"


def test_isolation_between_workspaces(ctx: ToolContext, tmp_path: Path) -> None:
    task = call("workspace_task_create", ctx, title="here")["task"]
    elsewhere = Workspace.objects.create(name="elsewhere", root_path=str(tmp_path))
    same_user_other_workspace = dataclasses.replace(ctx, workspace=workspace_get_info(workspace_id=elsewhere.pk))
    assert call("workspace_tasks_list", same_user_other_workspace)["tasks"] == []
    with pytest.raises(ToolError, match="not found"):
        call("workspace_task_get", same_user_other_workspace, task_id=task["id"])


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("workspace_task_create", {}, "required"),
        ("workspace_task_create", {"title": ""}, "title"),
        ("workspace_task_create", {"title": "x", "priority": "someday"}, "priority"),
        ("workspace_task_create", {"title": "x", "owner": 1}, "Additional properties"),
        ("workspace_task_create", {"title": "x", "tags": ["a"] * 21}, "tags"),
        ("workspace_task_create", {"title": "   "}, "title cannot be empty"),
        ("workspace_task_update", {"task_id": 1}, "task_id"),
        ("workspace_task_update", {"task_id": 1, "status": "finished"}, "status"),
        ("workspace_task_set_status", {"task_id": 1}, "required"),
        ("workspace_tasks_list", {"limit": 0}, "limit"),
        ("workspace_task_delete", {"task_id": 0}, "task_id"),
    ],
)
def test_validation(ctx: ToolContext, name: str, arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ToolError, match=message):
        tool_call(name=name, arguments=arguments, context=ctx)
    assert not Task.objects.exists()


def test_mutating_tools_say_so(ctx: ToolContext) -> None:
    specs = {name: spec for name, spec in registry.tool_specs().items() if name.startswith("workspace_task")}
    assert {name for name, spec in specs.items() if spec.mutates} == {
        "workspace_task_create",
        "workspace_task_update",
        "workspace_task_set_status",
        "workspace_task_delete",
    }
    assert specs["workspace_tasks_list"].input_schema["properties"]["status"]["enum"] == [
        "todo", "in_progress", "blocked", "done", "cancelled",
    ]  # fmt: skip
