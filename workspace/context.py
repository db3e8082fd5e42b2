"""Who calls a workspace tool over HTTP, in which workspace: shared by /v1/tools and the MCP endpoint at /mcp.

The caller is authenticated by the gateway's API keys (``x-api-key`` or ``Authorization: Bearer``); the workspace
is the one named by ``x-lynkr-workspace``, else the key's (user's, team's) default. A workspace the caller has no
grant for is refused exactly like one that does not exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.auth import request_authenticate
from gateway.db import db_async
from gateway.errors import PermissionDeniedError
from gateway.selectors import KeyInfo
from workspace.info import ToolContext, WorkspaceInfo
from workspace.selectors import WorkspaceUnavailable, workspace_resolve

WORKSPACE_HEADER = "x-lynkr-workspace"


@dataclass(frozen=True, slots=True)
class ToolCaller:
    key: KeyInfo
    context: ToolContext


async def workspace_for_key(*, key: KeyInfo, requested: str) -> WorkspaceInfo:
    """The workspace ``key`` works in (``requested`` by name, else its default). Raises PermissionDeniedError."""
    try:
        return await db_async(workspace_resolve)(
            user_id=key.user_id, group_ids=key.group_ids, api_key_id=key.id, requested=requested.strip()
        )
    except WorkspaceUnavailable as exc:
        raise PermissionDeniedError(str(exc)) from None


async def tool_caller_resolve(*, headers: Mapping[str, str], request_id: str = "") -> ToolCaller:
    """Authenticate a request from its headers (lower-case names, or Django's case-insensitive ``request.headers``)
    and pick its workspace. Raises AuthenticationError (401) or PermissionDeniedError (403)."""
    key = await request_authenticate(headers)
    workspace = await workspace_for_key(key=key, requested=headers.get(WORKSPACE_HEADER, ""))
    context = ToolContext(workspace=workspace, user_id=key.user_id, api_key_id=key.id, request_id=request_id)
    return ToolCaller(key=key, context=context)
