"""The workspace_task_* tools: a per-user task list in the current workspace, for the model to plan with.

Every call is scoped to the caller's workspace and user (ToolContext); another user's task is "not found".
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from tasks_app.models import TaskPriority, TaskStatus
from tasks_app.selectors import MAX_LIST_LIMIT, TaskNotFound, task_get, task_list
from tasks_app.services import (
    MAX_DESCRIPTION_CHARS,
    MAX_TAG_CHARS,
    MAX_TAGS,
    MAX_TITLE_CHARS,
    TaskInvalid,
    task_create,
    task_delete,
    task_set_status,
    task_update,
)
from workspace.info import ToolContext
from workspace.tools.registry import ToolError, tool

_TASK_ID = {"type": "integer", "minimum": 1, "description": "The task's id."}
_TITLE = {"type": "string", "minLength": 1, "maxLength": MAX_TITLE_CHARS}
_DESCRIPTION = {"type": "string", "maxLength": MAX_DESCRIPTION_CHARS}
_STATUS = {"type": "string", "enum": list(TaskStatus.values)}
_PRIORITY = {"type": "string", "enum": list(TaskPriority.values)}
_TAGS = {
    "type": "array",
    "items": {"type": "string", "minLength": 1, "maxLength": MAX_TAG_CHARS},
    "maxItems": MAX_TAGS,
}

Handler = Callable[[ToolContext, dict[str, Any]], dict[str, Any]]


def _tool_errors(handler: Handler) -> Handler:
    """The services' refusals become ToolErrors the model reads."""

    @wraps(handler)
    def run(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
        try:
            return handler(ctx, args)
        except (TaskNotFound, TaskInvalid) as exc:
            raise ToolError(str(exc)) from None

    return run


@tool(
    "workspace_task_create",
    "Create a task in your task list for this workspace (to plan multi-step work and track it).",
    {
        "type": "object",
        "properties": {"title": _TITLE, "description": _DESCRIPTION, "priority": _PRIORITY, "tags": _TAGS},
        "required": ["title"],
        "additionalProperties": False,
    },
    mutates=True,
)
@_tool_errors
def workspace_task_create(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    task = task_create(
        workspace_id=ctx.workspace.id,
        user_id=ctx.user_id,
        title=args["title"],
        description=args.get("description", ""),
        priority=args.get("priority", TaskPriority.MEDIUM),
        tags=args.get("tags", ()),
    )
    return {"task": task}


@tool(
    "workspace_tasks_list",
    "List your tasks in this workspace, most recently updated first; filter by status or tag.",
    {
        "type": "object",
        "properties": {
            "status": _STATUS,
            "tag": {"type": "string", "minLength": 1, "maxLength": MAX_TAG_CHARS},
            "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIST_LIMIT, "default": 50},
        },
        "additionalProperties": False,
    },
)
@_tool_errors
def workspace_tasks_list(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    tasks = task_list(
        workspace_id=ctx.workspace.id,
        user_id=ctx.user_id,
        status=args.get("status"),
        tag=args.get("tag"),
        limit=int(args.get("limit", 50)),
    )
    return {"tasks": tasks, "count": len(tasks)}


@tool(
    "workspace_task_get",
    "Show one of your tasks by id.",
    {"type": "object", "properties": {"task_id": _TASK_ID}, "required": ["task_id"], "additionalProperties": False},
)
@_tool_errors
def workspace_task_get(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    return {"task": task_get(task_id=args["task_id"], workspace_id=ctx.workspace.id, user_id=ctx.user_id)}


@tool(
    "workspace_task_update",
    "Change one of your tasks: any of title, description, priority, status, tags (tags replace the old list).",
    {
        "type": "object",
        "properties": {
            "task_id": _TASK_ID,
            "title": _TITLE,
            "description": _DESCRIPTION,
            "priority": _PRIORITY,
            "status": _STATUS,
            "tags": _TAGS,
        },
        "required": ["task_id"],
        "minProperties": 2,
        "additionalProperties": False,
    },
    mutates=True,
)
@_tool_errors
def workspace_task_update(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    fields = {name: value for name, value in args.items() if name != "task_id"}
    return {"task": task_update(task_id=args["task_id"], workspace_id=ctx.workspace.id, user_id=ctx.user_id, **fields)}


@tool(
    "workspace_task_set_status",
    "Set the status of one of your tasks (todo, in_progress, blocked, done, cancelled).",
    {
        "type": "object",
        "properties": {"task_id": _TASK_ID, "status": _STATUS},
        "required": ["task_id", "status"],
        "additionalProperties": False,
    },
    mutates=True,
)
@_tool_errors
def workspace_task_set_status(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    task = task_set_status(
        task_id=args["task_id"], workspace_id=ctx.workspace.id, user_id=ctx.user_id, status=args["status"]
    )
    return {"task": task}


@tool(
    "workspace_task_delete",
    "Delete one of your tasks by id.",
    {"type": "object", "properties": {"task_id": _TASK_ID}, "required": ["task_id"], "additionalProperties": False},
    mutates=True,
)
@_tool_errors
def workspace_task_delete(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    task = task_delete(task_id=args["task_id"], workspace_id=ctx.workspace.id, user_id=ctx.user_id)
    return {"deleted": True, "task": task}
