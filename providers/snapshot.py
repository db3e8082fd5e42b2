"""The per-process routing snapshot, kept fresh off the request path.

A save in admin (any routing model) bumps ``RoutingVersion`` (signals.py) and, with Redis, a version key in the
shared cache. Each server process polls that version every ``LYNKR_ROUTING_POLL`` seconds in a background task and
rebuilds its snapshot when it changed, so a change reaches every process within ~2 s without an ORM query on the
request path. The process that saved invalidates its own snapshot at once.
"""

from __future__ import annotations

import asyncio
import logging
import weakref

from django.conf import settings
from django.core.cache import cache

from gateway.db import db_async
from providers.routing import RoutingSnapshot
from providers.selectors import routing_snapshot_build, routing_version_get

logger = logging.getLogger(__name__)

VERSION_KEY = "lynkr:routing:version"


class _Cache:
    snapshot: RoutingSnapshot | None = None
    stale = True
    pollers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = weakref.WeakKeyDictionary()


def routing_snapshot_invalidate() -> None:
    _Cache.stale = True


async def routing_version_current() -> int:
    if settings.REDIS_URL:
        value = await cache.aget(VERSION_KEY)
        if value is not None:
            return int(value)
    return await db_async(routing_version_get)()


async def _rebuild() -> RoutingSnapshot:
    _Cache.stale = False
    snapshot = await db_async(routing_snapshot_build)()
    _Cache.snapshot = snapshot
    return snapshot


async def _poll() -> None:
    while True:
        await asyncio.sleep(settings.LYNKR_ROUTING_POLL)
        try:
            current = _Cache.snapshot
            if current is None or _Cache.stale or await routing_version_current() != current.version:
                await _rebuild()
        except RuntimeError as exc:
            if _interpreter_exiting(exc):
                return  # the process is stopping (its thread pools refuse work): nothing left to refresh for
            logger.exception("routing snapshot refresh failed; keeping the previous snapshot")
        except Exception:  # a database or Redis hiccup must not kill the poller
            logger.exception("routing snapshot refresh failed; keeping the previous snapshot")


def _interpreter_exiting(exc: RuntimeError) -> bool:
    """concurrent.futures refuses new work once the interpreter is shutting down (or its executor was shut down);
    under Daphne the loop still runs then, for the graceful drain."""
    return "after shutdown" in str(exc) or "interpreter shutdown" in str(exc)


def _ensure_poller() -> None:
    loop = asyncio.get_running_loop()
    task = _Cache.pollers.get(loop)
    if task is None or task.done():
        _Cache.pollers[loop] = loop.create_task(_poll(), name="lynkr-routing-poller")


async def routing_snapshot_get() -> RoutingSnapshot:
    _ensure_poller()
    snapshot = _Cache.snapshot
    if snapshot is None or _Cache.stale:
        snapshot = await _rebuild()
    return snapshot
