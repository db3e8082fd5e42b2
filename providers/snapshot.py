"""The per-process cache of the routing snapshot."""

from __future__ import annotations

import time

from asgiref.sync import sync_to_async
from django.conf import settings

from providers.routing import RoutingSnapshot
from providers.selectors import routing_snapshot_build


class _Cache:
    snapshot: RoutingSnapshot | None = None
    built_at: float = 0.0


def routing_snapshot_invalidate() -> None:
    _Cache.built_at = 0.0


async def routing_snapshot_get() -> RoutingSnapshot:
    """The cached snapshot, rebuilt when older than LYNKR_ROUTING_TTL. Two concurrent rebuilds are harmless."""
    snapshot = _Cache.snapshot
    if snapshot is not None and time.monotonic() - _Cache.built_at < settings.LYNKR_ROUTING_TTL:
        return snapshot
    fresh = await sync_to_async(routing_snapshot_build)()
    _Cache.snapshot = fresh
    _Cache.built_at = time.monotonic()
    return fresh
