"""Load shedding and refusal during shutdown (Lynkr's LOAD_SHEDDING_* names).

New requests get 503 ``overloaded_error`` with ``Retry-After`` when the process is draining for shutdown, when it
already serves ``LOAD_SHEDDING_ACTIVE_REQUESTS_THRESHOLD`` requests, or when its memory use passes
``LOAD_SHEDDING_MEMORY_THRESHOLD`` of the machine's (or the container's) memory. Memory is read from /proc at most
once a second, so the check costs nothing measurable per request.
"""

from __future__ import annotations

import os
import time

from django.conf import settings

from gateway.lifecycle import inflight_count, shutting_down
from gateway.wire.errors import OverloadedError

_memory: list[float] = [0.0, 0.0]  # [fraction, read at]


def memory_fraction() -> float:
    """Resident memory of this process over total memory (cgroup limit when there is one); 0 if unknown."""
    now = time.monotonic()
    if now - _memory[1] < 1.0:
        return _memory[0]
    fraction = 0.0
    try:
        with open("/proc/self/statm") as handle:
            rss = int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        total = _total_memory()
        fraction = rss / total if total else 0.0
    except (OSError, ValueError, IndexError):
        fraction = 0.0
    _memory[:] = [fraction, now]
    return fraction


def _total_memory() -> int:
    try:
        with open("/sys/fs/cgroup/memory.max") as handle:
            value = handle.read().strip()
            if value.isdigit():
                return int(value)
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def shed_check() -> None:
    """Raise 503 overloaded_error (with Retry-After) when this process must not take a new request."""
    if shutting_down():
        raise OverloadedError("the gateway is shutting down; retry on another instance", headers={"retry-after": "5"},
                              status=503)  # fmt: skip
    if inflight_count() >= settings.LYNKR_SHED_ACTIVE_REQUESTS:
        raise OverloadedError(
            f"the gateway is at its limit of {settings.LYNKR_SHED_ACTIVE_REQUESTS} active requests",
            headers={"retry-after": "2"},
            status=503,
        )
    if memory_fraction() >= settings.LYNKR_SHED_MEMORY_FRACTION:
        raise OverloadedError("the gateway is low on memory", headers={"retry-after": "5"}, status=503)
