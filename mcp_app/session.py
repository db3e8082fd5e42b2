"""One MCP session: an owner task holding the transport and the SDK's ClientSession open, and its requests.

Runs on the manager's event loop only (mcp_app/client.py). The owner relays the transport's read stream to the
ClientSession so that the end of the stream (a stdio server that exited, an HTTP stream that broke) is noticed
even while no request is waiting: the session is then dead and the manager starts a new one on the next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from pathlib import Path
from typing import IO, Any

import anyio
import mcp_types as types
from anyio.streams.memory import MemoryObjectSendStream
from mcp import ClientSession
from mcp.shared._stream_protocols import ReadStream
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage

from mcp_app.info import STDIO, McpServerConfig, McpTool
from mcp_app.sandbox import SandboxUnavailable
from mcp_app.transports import transport_open

logger = logging.getLogger(__name__)

CLIENT_INFO = types.Implementation(name="lynkr", version="0.1.0")
MAX_TOOL_PAGES = 50
STDERR_TAIL_BYTES = 2000


class McpClientError(Exception):
    """A failure the model may read. ``detail`` (a stdio server's last stderr lines) is for admins only."""

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


class McpUnavailable(McpClientError):
    """The server cannot be started or reached (or was restarted too often)."""


class McpTimeout(McpClientError):
    pass


class McpConnectionLost(McpClientError):
    def __init__(self, message: str, *, session_expired: bool = False) -> None:
        super().__init__(message)
        self.session_expired = session_expired


class McpCallFailed(McpClientError):
    """The server answered a request with a JSON-RPC error (unknown tool, invalid params ...)."""


def describe(exc: BaseException) -> str:
    """A one-line reason for ``exc`` (the first leaf of an exception group), without a traceback."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, MCPError):
        return exc.message
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _tool(tool: types.Tool) -> McpTool:
    annotations = tool.annotations
    return McpTool(
        name=tool.name,
        description=tool.description or tool.title or "",
        input_schema=dict(tool.input_schema),
        read_only=bool(annotations is not None and annotations.read_only_hint),
    )


async def _list_all(client: ClientSession) -> tuple[McpTool, ...]:
    tools: list[types.Tool] = []
    cursor: str | None = None
    for _ in range(MAX_TOOL_PAGES):
        params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await client.list_tools(params=params)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    return tuple(_tool(tool) for tool in tools)


class Session:
    def __init__(self, server: McpServerConfig, root: Path | None, *, errlog: IO[str] | None) -> None:
        self.server = server
        self.root = root
        self.errlog = errlog
        self.fingerprint = server.fingerprint()
        self.ready = asyncio.Event()
        self.tools: tuple[McpTool, ...] = ()
        self.error: BaseException | None = None
        self.ended = False
        self.stopped_by_us = False
        self.last_used = time.monotonic()
        self._client: ClientSession | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._checks: set[asyncio.Task[None]] = set()

    @property
    def label(self) -> str:
        return self.server.name + (f" (workspace {self.root})" if self.root is not None else "")

    @property
    def alive(self) -> bool:
        return self._client is not None and not self.ended

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._own(), name=f"mcp {self.label}")

    async def _own(self) -> None:
        try:
            async with contextlib.AsyncExitStack() as stack:
                read, write = await stack.enter_async_context(transport_open(self.server, self.root, self.errlog))
                relay_send, relay_receive = anyio.create_memory_object_stream[SessionMessage | Exception](0)
                stack.callback(relay_send.close)
                group = await stack.enter_async_context(anyio.create_task_group())
                stack.callback(group.cancel_scope.cancel)  # runs before the group is awaited: the relay ends
                group.start_soon(self._relay, read, relay_send)
                # No session-wide read timeout: each request below bounds its own wait.
                client = await stack.enter_async_context(ClientSession(relay_receive, write, client_info=CLIENT_INFO))
                with anyio.fail_after(self.server.startup_timeout):
                    await client.initialize()
                    self.tools = await _list_all(client)
                self._client = client
                logger.info("MCP session %s started with %d tools", self.label, len(self.tools))
                self.ready.set()
                await self._stop.wait()
        except Exception as exc:
            self.error = exc
            if not self.stopped_by_us:
                logger.warning("MCP session %s ended: %s", self.label, describe(exc))
        finally:
            self.ended = True
            self._client = None
            self.ready.set()

    async def _relay(
        self, read: ReadStream[SessionMessage | Exception], send: MemoryObjectSendStream[SessionMessage | Exception]
    ) -> None:
        try:
            async with send:
                async for item in read:
                    await send.send(item)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream):
            pass
        finally:
            if not self.stopped_by_us:
                logger.warning("MCP server %s closed its connection", self.label)
            self.ended = True
            self._stop.set()

    def stderr_tail(self) -> str:
        if self.errlog is None or self.errlog.closed:
            return ""
        with contextlib.suppress(OSError, ValueError):
            fd = self.errlog.fileno()
            size = os.fstat(fd).st_size
            data = os.pread(fd, min(size, STDERR_TAIL_BYTES), max(0, size - STDERR_TAIL_BYTES))
            return data.decode(errors="replace").strip()
        return ""

    def failure(self) -> McpClientError:
        """Why the session is not usable (after ``ready``)."""
        error = self.error
        if isinstance(error, McpClientError):
            return error
        if isinstance(error, SandboxUnavailable):
            return McpUnavailable(str(error))
        name, timeout = self.server.name, self.server.startup_timeout
        if isinstance(error, TimeoutError):
            return McpTimeout(
                f"MCP server {name} did not finish starting (initialize, tools/list) within {timeout:g} s"
            )
        reason = describe(error) if error is not None else "the connection closed"
        verb = "could not be started" if self.server.transport == STDIO else "is not reachable"
        return McpUnavailable(f"MCP server {name} {verb}: {reason}", detail=self.stderr_tail())

    def _client_or_raise(self) -> ClientSession:
        if self._client is None or self.ended:
            raise McpConnectionLost(f"MCP server {self.server.name} is not connected; it is started on the next call")
        self.last_used = time.monotonic()
        return self._client

    def _translate(self, exc: MCPError, method: str) -> McpClientError:
        name, timeout = self.server.name, self.server.timeout_seconds
        if exc.code == types.REQUEST_TIMEOUT:
            check = asyncio.get_running_loop().create_task(self._check_alive())
            self._checks.add(check)  # the loop keeps only a weak reference to a task
            check.add_done_callback(self._checks.discard)
            return McpTimeout(f"MCP server {name} did not answer {method} within {timeout:g} s")
        if exc.code == types.CONNECTION_CLOSED:
            self.ended = True
            self._stop.set()
            return McpConnectionLost(
                f"MCP server {name} closed the connection during {method} (it exited or crashed); "
                "it is started again on the next call"
            )
        # An HTTP server that no longer knows our session id answers 404 (spec: session management); the SDK
        # reports it as "Session terminated", or hands on the server's own JSON-RPC error ("Session not found").
        if exc.code == types.INVALID_REQUEST and "session" in exc.message.lower():
            self.ended = True
            self._stop.set()
            return McpConnectionLost(f"MCP server {name} ended our session", session_expired=True)
        return McpCallFailed(f"MCP server {name} refused {method}: {exc.message}")

    async def _check_alive(self) -> None:
        """After a timeout: a server that does not even answer a ping is hung; end it so the next call restarts."""
        client = self._client
        if client is None:
            return
        try:
            with anyio.fail_after(self.server.timeout_seconds):
                await client.send_ping()
        except Exception as exc:
            logger.warning("MCP server %s does not answer a ping (%s): ending the session", self.label, describe(exc))
            self.ended = True
            self._stop.set()

    async def list_tools(self) -> tuple[McpTool, ...]:
        client = self._client_or_raise()
        try:
            with anyio.fail_after(self.server.timeout_seconds):
                return await _list_all(client)
        except TimeoutError:
            raise McpTimeout(
                f"MCP server {self.server.name} did not answer tools/list within {self.server.timeout_seconds:g} s"
            ) from None
        except MCPError as exc:
            raise self._translate(exc, "tools/list") from None

    async def call_tool(self, tool: str, arguments: dict[str, Any]) -> types.CallToolResult:
        client = self._client_or_raise()
        try:
            return await client.call_tool(tool, arguments, read_timeout_seconds=self.server.timeout_seconds)
        except MCPError as exc:
            raise self._translate(exc, "tools/call") from None
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self.ended = True
            self._stop.set()
            raise McpConnectionLost(f"MCP server {self.server.name} connection is closed") from None
        except Exception as exc:  # a malformed answer (pydantic), an output-schema mismatch ...
            raise McpCallFailed(f"MCP server {self.server.name}: tools/call failed: {describe(exc)}") from None

    async def close(self, *, grace: float) -> None:
        if not self.ended:
            self.stopped_by_us = True
        self._stop.set()
        task = self._task
        if task is not None and not task.done():
            done, _ = await asyncio.wait({task}, timeout=grace)
            if not done:
                logger.warning("MCP session %s did not close within %g s: cancelling it", self.label, grace)
                task.cancel()
                await asyncio.wait({task}, timeout=2.0)
        if self.errlog is not None:
            self.errlog.close()
