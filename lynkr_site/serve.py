"""``lynkr serve``'s ASGI servers: Daphne (the default) or uvicorn, one process, same application.

Both drain in-flight requests on SIGTERM before the process stops (gateway/lifecycle.py) and flush buffered usage
after; the caller (lynkr_site/cli.py) does the set-up and the final flush. bench/results/ holds the measured
comparison (Daphne, uvicorn with uvloop + httptools, granian) that made uvicorn worth offering.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import resource
import signal
import sys
from typing import Any

SERVERS = ("daphne", "uvicorn")


def nofile_raise() -> int:
    """Lift the soft open-files limit to the hard one: every held stream costs two descriptors (the client's and the
    upstream's), and the usual soft limit of 1,024 would cap a process near 500 streams. Returns the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
        except (ValueError, OSError):
            return soft
    return soft


# glibc's mallopt parameter number for the arena limit (malloc.h: #define M_ARENA_MAX -8).
_M_ARENA_MAX = -8


def malloc_arenas_limit(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas (default: 8 per core) unless MALLOC_ARENA_MAX says otherwise. The database and
    workspace threads each get an arena of their own and keep its freed pages: with the cap, a burst of 64 concurrent
    Claude Code turns left the process ~16 MB smaller (bench/README.md). True when the limit was set."""
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl, ...): its allocator has no such knob
        return False
    return bool(libc.mallopt(_M_ARENA_MAX, arenas))


# Net new container objects before a young collection (CPython's default: 700). In flight, 64 Claude Code turns hold
# ~20k of them, so at 700 the collector ran ~0.5 times per request and walked objects about to die by reference
# count: ~190 us of CPU per request at c=64 (measured with gc.callbacks, bench/README.md). At 50,000 only what
# outlives its request (the slow drift) starts one: ~2 us per request, a young collection every few thousand.
YOUNG_COLLECTION_AFTER = 50_000
# Second-generation collections before a full one may start (CPython's default: 10).
FULL_COLLECTION_AFTER = 100


def heap_freeze() -> int:
    """Import the application and every provider adapter, then move everything alive into the collector's permanent
    generation (``gc.freeze``). A full collection walks every tracked object: with the start-up heap (~240k objects:
    Django, pydantic schemas, the URLconf ...) in it, each one paused the event loop ~95 ms, every few thousand
    requests, the p99 of every request in flight then; without it, ~3 ms. Start-up objects live as long as the
    process, so the collector loses nothing it could free. Full collections are made rarer too (below). Returns how many
    objects were frozen."""
    import gc
    import importlib

    import lynkr_site.asgi  # noqa: F401  (the ASGI server imports the same module object by name later)
    from providers.adapters import ADAPTERS

    for target in ADAPTERS.values():  # adapters load on their first request otherwise, after the freeze
        importlib.import_module(target.partition(":")[0])
    gc.collect()
    gc.freeze()
    # A full collection also walks every object of every open stream (~180 ms at 1,000 held streams, measured), and
    # by default one may start after every 10 second-generation collections: several while streams keep opening.
    # After 100 it is rare. Young collections: see YOUNG_COLLECTION_AFTER.
    _, middle, _ = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_AFTER, middle, FULL_COLLECTION_AFTER)
    return gc.get_freeze_count()


def process_prepare() -> None:
    """The server process's own set-up before the ASGI server starts (``lynkr serve``; bench/serve_asgi.py too)."""
    nofile_raise()
    malloc_arenas_limit()
    heap_freeze()


def daphne_argv(host: str, port: int, access_log: str) -> list[str]:
    # Verbosity 0: Daphne's access log is written per request on the event loop; it is on only when asked for
    # (LYNKR_ACCESS_LOG), since the gateway's own per-request log line already carries the request id and outcome.
    argv = ["--bind", host, "--port", str(port), "--proxy-headers", "-v", "0"]
    if access_log:
        argv += ["--access-log", access_log]
    return [*argv, "lynkr_site.asgi:application"]


def serve_daphne(host: str, port: int, *, access_log: str, grace: float) -> None:
    from django.conf import settings

    from lynkr_site.serve_twisted import daphne_install

    # Before daphne.cli imports daphne.server (and, through it, Twisted's asyncio reactor).
    daphne_install(settings.LYNKR_MAX_BODY_BYTES)
    from daphne.cli import CommandLineInterface
    from twisted.internet import defer, reactor

    from gateway.lifecycle import drain

    def _graceful() -> object:
        # Runs before Daphne's own shutdown work: in-flight requests finish (or are cancelled and clean up).
        return defer.Deferred.fromFuture(asyncio.ensure_future(drain(grace)))

    reactor.addSystemEventTrigger("before", "shutdown", _graceful)  # type: ignore[attr-defined,arg-type]
    CommandLineInterface().run(daphne_argv(host, port, access_log))


def serve_uvicorn(host: str, port: int, *, access_log: str, grace: float) -> None:
    """uvicorn with uvloop and httptools when installed (``pip install 'lynkr[uvicorn]'``), else asyncio and h11."""
    import uvicorn

    from gateway.lifecycle import drain

    class _Server(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            await drain(grace)  # new requests get 503 from here on; in-flight ones finish or are cancelled and billed
            await super().shutdown(sockets)

    config = uvicorn.Config(
        "lynkr_site.asgi:application",
        host=host,
        port=port,
        loop="auto",
        http="auto",
        lifespan="off",  # Channels' ProtocolTypeRouter has no lifespan handler
        access_log=bool(access_log),
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        timeout_graceful_shutdown=int(grace) + 15,
        backlog=4096,
        log_config=None,  # Django's LOGGING already configured the root logger
    )
    # uvicorn re-raises the signal that stopped it once it has shut down, with the handlers it found restored; under
    # Python's defaults that kills the process (SIGTERM) or raises KeyboardInterrupt (SIGINT) before `lynkr serve`
    # flushes the usage buffer. Handlers that do nothing make that re-raise harmless.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _ignore)
    _Server(config).run()


def _ignore(signum: int, frame: object) -> None:
    return None
