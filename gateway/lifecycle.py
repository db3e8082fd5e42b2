"""In-flight requests and graceful shutdown.

Every /v1/messages request registers its task. On SIGTERM, ``lynkr serve`` (a Twisted "before shutdown" trigger)
waits up to ``GRACEFUL_SHUTDOWN_TIMEOUT`` for them to finish, then cancels the rest and waits briefly for their
``finally:`` blocks, which bill the usage and release budget reservations; the usage buffer is flushed after that.
Without this, Daphne's shutdown cancels only the outer ASGI task and the request tasks die with the event loop,
their usage unrecorded.
"""

from __future__ import annotations

import asyncio
import logging

logger = logging.getLogger(__name__)

_inflight: set[asyncio.Task[object]] = set()


class _State:
    shutting_down = False


def request_track() -> None:
    task = asyncio.current_task()
    if task is not None:
        _inflight.add(task)
        task.add_done_callback(_inflight.discard)


def inflight_count() -> int:
    return len(_inflight)


def shutting_down() -> bool:
    return _State.shutting_down


async def drain(grace: float, *, cancel_wait: float = 10.0) -> tuple[int, int]:
    """Let in-flight requests finish (up to ``grace`` s); cancel the rest and wait for their cleanup.
    Returns (finished, cancelled)."""
    _State.shutting_down = True
    tasks = {t for t in _inflight if not t.done()}
    if not tasks:
        return 0, 0
    logger.info("shutdown: waiting up to %.0f s for %d in-flight request(s)", grace, len(tasks))
    done, pending = await asyncio.wait(tasks, timeout=grace) if grace > 0 else (set(), tasks)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=cancel_wait)
    logger.info("shutdown: %d request(s) finished, %d cancelled", len(done), len(pending))
    return len(done), len(pending)
