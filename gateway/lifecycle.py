"""In-flight requests and graceful shutdown.

Every /v1/messages request registers its task. On SIGTERM, ``lynkr serve`` (a Twisted "before shutdown" trigger)
waits up to ``GRACEFUL_SHUTDOWN_TIMEOUT`` for them to finish, then cancels the rest and waits briefly for their
``finally:`` blocks, which bill the usage and release budget reservations; the usage buffer is flushed after that.
Without this, Daphne's shutdown cancels only the outer ASGI task and the request tasks die with the event loop,
their usage unrecorded.

What a request owes after its answer is out (billing it, ``settle_soon``) runs in a task of its own: the client does
not wait for it, the client leaving cannot cancel it half-way, and ``drain`` and ``settled`` wait for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

logger = logging.getLogger(__name__)

_inflight: set[asyncio.Task[object]] = set()
_settling: set[asyncio.Task[Any]] = set()


class _State:
    shutting_down = False


def request_track() -> None:
    task = asyncio.current_task()
    if task is not None:
        _inflight.add(task)
        task.add_done_callback(_inflight.discard)


def settle_soon(work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """Run ``work`` in a task of its own, from when the current task next yields. Called as the view hands over its
    answer, that is once the answer is written: Daphne (lynkr_site/serve_twisted.py) and uvicorn write in ``send``
    itself, without yielding."""
    task = asyncio.get_running_loop().create_task(work)
    _settling.add(task)
    task.add_done_callback(_settle_done)
    return task


def _settle_done(task: asyncio.Task[Any]) -> None:
    _settling.discard(task)
    error = None if task.cancelled() else task.exception()
    if error is not None:  # nobody awaits these tasks: without this, asyncio would only say so when it is collected
        logger.error("work after an answer failed", exc_info=error)


async def settled(seconds: float | None = None) -> bool:
    """Wait until every ``settle_soon`` task, including those started meanwhile, has ended; False after ``seconds``.
    Not ``asyncio.timeout``: the tasks are waited for, never cancelled."""
    loop = asyncio.get_running_loop()
    deadline = None if seconds is None else loop.time() + seconds
    while _settling:
        left = None if deadline is None else deadline - loop.time()
        if left is not None and left <= 0:
            return False
        await asyncio.wait(set(_settling), timeout=left)
    return True


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
        await _settled_logged(cancel_wait)
        return 0, 0
    logger.info("shutdown: waiting up to %.0f s for %d in-flight request(s)", grace, len(tasks))
    done, pending = await asyncio.wait(tasks, timeout=grace) if grace > 0 else (set(), tasks)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=cancel_wait)
    logger.info("shutdown: %d request(s) finished, %d cancelled", len(done), len(pending))
    await _settled_logged(cancel_wait)  # the billing of the requests that just ended
    return len(done), len(pending)


async def _settled_logged(seconds: float) -> None:
    # Never cancelled: a settle task cut short would lose the usage it was recording.
    if not await settled(seconds):
        logger.error("shutdown: %d request(s) still being billed after %.0f s", len(_settling), seconds)
