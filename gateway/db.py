"""Running ORM work from async code, with a bounded number of database connections.

``sync_to_async``'s default (thread-sensitive) gives every request its own thread, and so its own database
connection, which nothing closes under ASGI: a burst of 50 streams held 50 PostgreSQL connections and the next
burst hit "too many clients". Lynkr's services run instead on a small, fixed pool of threads
(``LYNKR_DB_THREADS``), each keeping one connection that is health-checked before use (``close_old_connections``)
and reused for ``CONN_MAX_AGE`` seconds; with ``CONN_MAX_AGE=0`` it is closed after every call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache, wraps
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connections

P = ParamSpec("P")
R = TypeVar("R")


@cache
def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=settings.LYNKR_DB_THREADS, thread_name_prefix="lynkr-db")


def _managed(func: Callable[P, R]) -> Callable[P, R]:
    @wraps(func)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        close_old_connections()  # drop a connection that is broken or past CONN_MAX_AGE
        try:
            return func(*args, **kwargs)
        finally:
            if not settings.DATABASES["default"].get("CONN_MAX_AGE"):
                connections.close_all()

    return run


def db_async(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """``func`` (sync, ORM) as an awaitable run on the bounded database thread pool."""
    wrapped = _managed(func)

    @wraps(func)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return await sync_to_async(wrapped, thread_sensitive=False, executor=_executor())(*args, **kwargs)

    return run
