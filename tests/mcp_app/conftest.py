from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from workspace.info import ToolContext

ECHO_SERVER = Path(__file__).resolve().parent / "fixtures" / "echo_server.py"


@pytest.fixture(scope="module", autouse=True)
def _mcp_sessions_closed_after_module() -> Iterator[None]:
    """Sessions (server processes) are shared by a module's tests and all closed at its end."""
    yield
    from mcp_app.client import mcp_manager_close

    mcp_manager_close()


@pytest.fixture
def make_workspace(db: Any, django_user_model: Any) -> Callable[..., ToolContext]:
    """Create a Workspace row (with an optional Policy) at ``root`` and return a ToolContext for a new user."""
    from workspace.models import Policy, Workspace, WorkspaceGrant
    from workspace.selectors import workspace_get_info

    counter = {"n": 0}

    def make(root: Path, *, name: str = "", policy: dict[str, Any] | None = None, **fields: Any) -> ToolContext:
        counter["n"] += 1
        n = counter["n"]
        policy_row = Policy.objects.create(name=f"policy-{n}", **policy) if policy is not None else None
        workspace = Workspace.objects.create(name=name or f"ws-{n}", root_path=str(root), policy=policy_row, **fields)
        user = django_user_model.objects.create_user(username=f"user-{n}", password="x")
        WorkspaceGrant.objects.create(workspace=workspace, user=user)
        return ToolContext(workspace=workspace_get_info(workspace_id=workspace.pk), user_id=user.pk)

    return make


@pytest.fixture
def make_server(db: Any) -> Callable[..., Any]:
    """An McpServer row running the fixture echo server over stdio (no sandbox unless asked)."""
    from mcp_app.models import McpServer

    def make(name: str = "echo", **fields: Any) -> Any:
        values: dict[str, Any] = {
            "transport": "stdio",
            "command": sys.executable,
            "args": [str(ECHO_SERVER)],
            "sandbox": "none",
            "timeout_seconds": 10,
        }
        values.update(fields)
        return McpServer.objects.create(name=name, **values)

    return make
