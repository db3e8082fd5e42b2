"""The per-process MCP connection manager: one background event loop thread owns every MCP session.

The official SDK is async (anyio) and a stdio session must live inside one task's scopes for its whole life
(the transport's task group and the ClientSession), while the registry's tool handlers are synchronous and run
on worker threads. So each session has an owner task on the manager's loop that opens the transport, runs
``initialize`` (the SDK sends the protocol version, then ``notifications/initialized``), lists the tools and then
waits until it is told to stop or the server's stream ends. Requests (``tools/list``, ``tools/call``) are
awaited by their own tasks on the same loop (``asyncio.run_coroutine_threadsafe`` from the handler threads):
the SDK's dispatcher correlates answers by id, so concurrent calls on one session are fine.

Sessions are keyed by (server id, workspace root) for sandboxed stdio servers, so each workspace's files are the
ones mounted, and by (server id, "") otherwise (one process or HTTP session serves every workspace). A session
whose stream ended (the process exited, the HTTP stream broke) is dead; the next request starts a new one, at
most ``MAX_RESTARTS_PER_MINUTE`` times a minute per server. ``tools/list`` answers are cached per server for
``TOOLS_TTL_SECONDS``. At exit every session is closed (stdin closed, then the SDK's terminate/kill of the
process group; bubblewrap's --die-with-parent covers a gateway that dies without running atexit).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import logging
import os
import tempfile
import threading
import time
from collections import deque
from collections.abc import Coroutine
from pathlib import Path
from typing import IO, Any, TypeVar

import mcp_types as types

from mcp_app.info import STDIO, STREAMABLE_HTTP, McpServerConfig, McpTool
from mcp_app.session import McpClientError, McpConnectionLost, McpTimeout, McpUnavailable, Session, describe

logger = logging.getLogger(__name__)

T = TypeVar("T")

MAX_RESTARTS_PER_MINUTE = 3
TOOLS_TTL_SECONDS = 60.0
FAILED_LISTING_TTL_SECONDS = 20.0  # a server that failed to list is not asked again for this long
IDLE_SECONDS = 900.0  # an unused session is closed after this long
REAP_INTERVAL_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0
SUBMIT_MARGIN_SECONDS = 15.0  # beyond the server's own timeouts: the thread waiting on the loop gives up

__all__ = [
    "McpClientError",
    "McpConnectionLost",
    "McpManager",
    "McpTimeout",
    "McpUnavailable",
    "mcp_manager",
    "mcp_manager_close",
    "mcp_manager_running",
]


class _ToolCache:
    __slots__ = ("at", "error", "fingerprint", "tools")

    def __init__(self, fingerprint: str, tools: tuple[McpTool, ...], error: str = "") -> None:
        self.fingerprint = fingerprint
        self.tools = tools
        self.error = error
        self.at = time.monotonic()


class McpManager:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self._loop = asyncio.new_event_loop()
        self._sessions: dict[tuple[int, str], Session] = {}
        self._locks: dict[tuple[int, str], asyncio.Lock] = {}
        self._restarts: dict[int, deque[float]] = {}
        self._tools: dict[int, _ToolCache] = {}
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="lynkr-mcp", daemon=True)
        self._thread.start()

    # ---- the loop thread -------------------------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        reaper = self._loop.create_task(self._reap())
        try:
            self._loop.run_forever()
        finally:
            reaper.cancel()
            self._loop.run_until_complete(asyncio.gather(reaper, return_exceptions=True))
            self._loop.close()

    def _submit(self, coroutine: Coroutine[Any, Any, T], *, timeout: float, what: str) -> T:
        if self._closed:
            coroutine.close()
            raise McpUnavailable("the MCP client is shut down")
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise McpTimeout(f"{what} did not finish within {timeout:g} s") from None

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(REAP_INTERVAL_SECONDS)
            now = time.monotonic()
            for key, session in list(self._sessions.items()):
                if session.alive and now - session.last_used > IDLE_SECONDS:
                    async with self._locks.setdefault(key, asyncio.Lock()):
                        if self._sessions.get(key) is session and now - session.last_used > IDLE_SECONDS:
                            logger.info("closing idle MCP session %s", session.label)
                            await session.close(grace=STOP_TIMEOUT_SECONDS)
                            self._sessions.pop(key, None)

    # ---- sessions --------------------------------------------------------------------------------------------

    @staticmethod
    def _key(server: McpServerConfig, root: Path | None) -> tuple[int, str]:
        if server.sandboxed and root is not None:
            return server.id, os.path.realpath(root)
        return server.id, ""

    def _restart_allowed(self, server: McpServerConfig) -> None:
        now = time.monotonic()
        recent = self._restarts.setdefault(server.id, deque())
        while recent and now - recent[0] > 60.0:
            recent.popleft()
        if len(recent) >= MAX_RESTARTS_PER_MINUTE:
            wait = 60.0 - (now - recent[0])
            raise McpUnavailable(
                f"MCP server {server.name} stopped {len(recent)} times in the last minute; it is not started again "
                f"for {wait:.0f} s (an admin can restart it at once)"
            )
        recent.append(now)

    async def _session(self, server: McpServerConfig, root: Path | None) -> Session:
        key = self._key(server, root)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            session = self._sessions.get(key)
            restarting = created = False
            if session is not None and session.fingerprint != server.fingerprint():
                logger.info("MCP server %s changed: replacing its session", server.name)
                await session.close(grace=STOP_TIMEOUT_SECONDS)
                session = None
            elif session is not None and not session.alive and session.ready.is_set():
                restarting = not session.stopped_by_us
                await session.close(grace=STOP_TIMEOUT_SECONDS)
                session = None
            if session is not None:
                session.server = server  # the same connection; the name, timeout or tool lists may have changed
            else:
                if restarting:
                    self._restart_allowed(server)
                    logger.warning("restarting MCP server %s", server.name)
                session = Session(server, root if server.sandboxed else None, errlog=_errlog(server))
                self._sessions[key] = session
                session.start()
                created = True
            try:
                # The owner task bounds the start itself; this is the backstop.
                await asyncio.wait_for(session.ready.wait(), server.startup_timeout + STOP_TIMEOUT_SECONDS)
            except TimeoutError:
                await session.close(grace=STOP_TIMEOUT_SECONDS)
                raise McpTimeout(
                    f"MCP server {server.name} did not finish starting within {server.startup_timeout:g} s"
                ) from None
            if not session.alive:
                raise session.failure()
            session.last_used = time.monotonic()
            if created:  # its start listed the tools
                self._tools[server.id] = _ToolCache(server.fingerprint(), session.tools)
            return session

    async def _list(self, server: McpServerConfig, root: Path | None, refresh: bool) -> tuple[McpTool, ...]:
        cached = self._tools.get(server.id)
        if not refresh and cached is not None and cached.fingerprint == server.fingerprint():
            age = time.monotonic() - cached.at
            if cached.error and age < FAILED_LISTING_TTL_SECONDS:
                raise McpUnavailable(cached.error)
            if not cached.error and age < TOOLS_TTL_SECONDS:
                return cached.tools
        asked = time.monotonic()
        try:
            session = await self._session(server, root)
            fresh = self._tools.get(server.id)
            if fresh is None or fresh.error or fresh.at < asked:  # not listed by a session started just now
                fresh = _ToolCache(server.fingerprint(), await session.list_tools())
                self._tools[server.id] = fresh
            return fresh.tools
        except McpClientError as exc:
            self._tools[server.id] = _ToolCache(server.fingerprint(), (), str(exc))
            raise

    async def _call(
        self, server: McpServerConfig, root: Path | None, tool: str, arguments: dict[str, Any]
    ) -> types.CallToolResult:
        session = await self._session(server, root)
        try:
            return await session.call_tool(tool, arguments)
        except McpConnectionLost as exc:
            self._tools.pop(server.id, None)
            # A Streamable HTTP server that forgot our session (restarted: 404) never ran the call: reconnect once.
            if server.transport == STREAMABLE_HTTP and exc.session_expired:
                session = await self._session(server, root)
                return await session.call_tool(tool, arguments)
            raise

    async def _stop_server(self, server_id: int) -> None:
        sessions = [(key, session) for key, session in self._sessions.items() if key[0] == server_id]
        for key, session in sessions:
            await session.close(grace=STOP_TIMEOUT_SECONDS)
            self._sessions.pop(key, None)
        self._restarts.pop(server_id, None)
        self._tools.pop(server_id, None)

    async def _close_one(self, key: tuple[int, str]) -> None:
        session = self._sessions.pop(key, None)
        if session is not None:
            await session.close(grace=STOP_TIMEOUT_SECONDS)

    async def _close_all(self) -> None:
        sessions = list(self._sessions.values())
        self._sessions.clear()
        await asyncio.gather(*(session.close(grace=STOP_TIMEOUT_SECONDS) for session in sessions))

    # ---- the synchronous API (worker threads) ----------------------------------------------------------------

    def list_tools(
        self, server: McpServerConfig, *, workspace_root: Path | None, refresh: bool = False
    ) -> tuple[McpTool, ...]:
        """The server's tools (cached for TOOLS_TTL_SECONDS); connects on first use. Raises McpClientError."""
        return self._submit(
            self._list(server, workspace_root, refresh),
            timeout=server.startup_timeout + server.timeout_seconds + SUBMIT_MARGIN_SECONDS,
            what=f"listing the tools of MCP server {server.name}",
        )

    def call_tool(
        self, server: McpServerConfig, *, tool: str, arguments: dict[str, Any], workspace_root: Path | None
    ) -> types.CallToolResult:
        """``tools/call`` within the server's timeout. Raises McpClientError (the message is for the model)."""
        return self._submit(
            self._call(server, workspace_root, tool, arguments),
            timeout=2 * (server.startup_timeout + server.timeout_seconds) + SUBMIT_MARGIN_SECONDS,  # may reconnect
            what=f"calling {tool} on MCP server {server.name}",
        )

    def restart(self, server_id: int) -> None:
        """Close the server's sessions and forget its failures: the next request starts it afresh."""
        self._submit(self._stop_server(server_id), timeout=STOP_TIMEOUT_SECONDS * 2, what="stopping an MCP server")

    def close_session(self, server: McpServerConfig, *, workspace_root: Path | None) -> None:
        """Close the one session serving ``server`` in ``workspace_root`` (a probe's throwaway workspace)."""
        key = self._key(server, workspace_root)
        self._submit(self._close_one(key), timeout=STOP_TIMEOUT_SECONDS * 2, what="closing an MCP session")

    def sessions(self) -> list[tuple[int, str, bool]]:
        """(server id, workspace root or "", alive) of every session (for admin and tests)."""
        return [(key[0], key[1], session.alive) for key, session in self._sessions.items()]

    def close(self) -> None:
        if self._closed:
            return
        with contextlib.suppress(Exception):
            self._submit(self._close_all(), timeout=STOP_TIMEOUT_SECONDS * 2, what="closing the MCP sessions")
        self._closed = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


def _errlog(server: McpServerConfig) -> IO[str] | None:
    """Where a stdio server's stderr goes: a temporary file whose tail explains a failed start."""
    if server.transport != STDIO:
        return None
    return tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace", prefix="lynkr-mcp-")


_manager: McpManager | None = None
_manager_lock = threading.Lock()


def mcp_manager() -> McpManager:
    """This process's manager, started on first use (a forked child starts its own)."""
    global _manager
    with _manager_lock:
        if _manager is None or _manager.pid != os.getpid():
            _manager = McpManager()
            atexit.register(_manager.close)
        return _manager


def mcp_manager_running() -> McpManager | None:
    """This process's manager if it has been started (signals use it without starting one)."""
    with _manager_lock:
        return _manager if _manager is not None and _manager.pid == os.getpid() else None


def mcp_manager_close() -> None:
    """Close every session and stop the loop (tests; atexit does it for a server)."""
    global _manager
    with _manager_lock:
        if _manager is not None and _manager.pid == os.getpid():
            _manager.close()
        _manager = None


__all__ += ["describe"]
