"""Reads of MCP servers: which servers a user may use, as frozen McpServerConfig values (secrets decrypted)."""

from __future__ import annotations

import shutil
from functools import cache

from django.contrib.auth.models import Group
from django.db.models import Exists, OuterRef, Q, QuerySet

from mcp_app import config
from mcp_app.info import McpServerConfig
from mcp_app.models import McpServer
from mcp_app.sandbox import runtime_resolve


@cache
def bwrap_available() -> bool:
    return shutil.which("bwrap") is not None


def mcp_server_config(server: McpServer) -> McpServerConfig:
    return McpServerConfig(
        id=server.pk,
        name=server.name,
        transport=server.transport,
        command=server.command,
        args=tuple(str(arg) for arg in server.args or ()),
        env=dict(server.env or {}),
        url=server.url,
        headers=dict(server.headers or {}),
        timeout_seconds=float(server.timeout_seconds or 30),
        runtime=runtime_resolve(
            sandbox=server.sandbox,
            transport=server.transport,
            sandbox_enabled=config.sandbox_enabled(),
            bwrap_available=bwrap_available(),
        ),
        sandbox_network=server.sandbox_network,
        docker_image=server.docker_image or config.sandbox_image(),
        tool_allow=tuple(server.tool_allow or ()),
        tool_deny=tuple(server.tool_deny or ()),
    )


def _usable_by(user_id: int) -> QuerySet[McpServer]:
    """Enabled servers without a user or group list, or listing this user or one of the user's groups."""
    users = McpServer.allowed_users.through.objects.filter(mcpserver_id=OuterRef("pk"))
    groups = McpServer.allowed_groups.through.objects.filter(mcpserver_id=OuterRef("pk"))
    user_groups = Group.objects.filter(user__id=user_id).values("pk")
    return (
        McpServer.objects.filter(enabled=True)
        .alias(
            restricted_users=Exists(users),
            restricted_groups=Exists(groups),
            lists_user=Exists(users.filter(user_id=user_id)),
            lists_group=Exists(groups.filter(group_id__in=user_groups)),
        )
        .filter(
            Q(restricted_users=False, restricted_groups=False) | Q(lists_user=True) | Q(lists_group=True),
        )
    )


def mcp_servers_for_user(*, user_id: int) -> list[McpServerConfig]:
    return [mcp_server_config(server) for server in _usable_by(user_id).order_by("name")]


def mcp_server_for_user(*, name: str, user_id: int) -> McpServerConfig | None:
    """The server called ``name`` if it is enabled and this user may use it; None otherwise (indistinguishable)."""
    server = _usable_by(user_id).filter(name=name).first()
    return mcp_server_config(server) if server is not None else None


def mcp_server_get_config(*, server_id: int) -> McpServerConfig:
    return mcp_server_config(McpServer.objects.get(pk=server_id))
