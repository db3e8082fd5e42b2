"""Session invalidation only: a deleted or disabled server's processes in this process end at once (other
processes' end when idle; no caller can reach them meanwhile, since every call re-reads the rows)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from mcp_app.models import McpServer


def _stop(server_id: int) -> None:
    from mcp_app.client import mcp_manager_running

    manager = mcp_manager_running()
    if manager is not None:
        manager.restart(server_id)


def _saved(instance: McpServer, **_: Any) -> None:
    if not instance.enabled:
        server_id = instance.pk
        transaction.on_commit(lambda: _stop(server_id))


def _deleted(instance: McpServer, **_: Any) -> None:
    server_id = instance.pk
    transaction.on_commit(lambda: _stop(server_id))


post_save.connect(_saved, sender=McpServer, dispatch_uid="mcp-server-save")
post_delete.connect(_deleted, sender=McpServer, dispatch_uid="mcp-server-delete")
