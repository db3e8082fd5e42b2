"""The Docker runtime of a stdio MCP server, with the ``docker`` SDK: a container from ``docker_container_spec``
whose attached stdin/stdout carry the MCP stdio transport (newline-delimited JSON-RPC).

Without a TTY the attach stream is multiplexed: 8-byte frame headers (stream id, size) before each chunk of
stdout or stderr (https://docs.docker.com/reference/api/engine/version/v1.47/#tag/Container/operation/ContainerAttach);
the SDK's ``frames_iter`` reads them. The blocking socket is read and written on worker threads. This path is
exercised only where a Docker engine runs: the CI machines have none, so the spec and the connect-time error
("Docker engine not reachable") are what the tests cover.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
import mcp_types as types
from anyio.streams.memory import MemoryObjectSendStream
from mcp.client._transport import TransportStreams
from mcp.shared.message import SessionMessage

from mcp_app.info import McpServerConfig
from mcp_app.sandbox import SandboxUnavailable, docker_container_spec

logger = logging.getLogger(__name__)

STDOUT = 1
STOP_TIMEOUT_SECONDS = 3


def lines_from_frames(frames: Iterator[tuple[int, bytes]]) -> Iterator[bytes]:
    """Complete stdout lines of a demultiplexed attach stream (stderr frames are logged at DEBUG)."""
    buffer = b""
    for stream, data in frames:
        if stream != STDOUT:
            logger.debug("MCP container stderr: %s", data[:500].decode(errors="replace"))
            continue
        buffer += data
        *complete, buffer = buffer.split(b"\n")
        yield from (line for line in complete if line.strip())
    if buffer.strip():
        yield buffer


def _parse(line: bytes) -> SessionMessage | Exception:
    try:
        return SessionMessage(types.jsonrpc_message_adapter.validate_json(line, by_name=False))
    except ValueError as exc:
        return exc


def _start(server: McpServerConfig, root: Path) -> tuple[Any, Any]:
    """Create, attach and start the container (blocking; on a worker thread)."""
    import docker
    from docker.errors import DockerException, ImageNotFound

    spec = docker_container_spec(server, root)
    try:
        client = docker.from_env()
        client.ping()
    except DockerException as exc:
        raise SandboxUnavailable(
            f"MCP server {server.name} uses the docker sandbox but the Docker engine is not reachable: {exc}"
        ) from None
    create = {key: value for key, value in spec.items() if key != "detach"}
    try:
        container = client.containers.create(**create)
        # Attached before the start, so nothing the server prints first is lost.
        sock = container.attach_socket(params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
        container.start()
    except ImageNotFound:
        raise SandboxUnavailable(
            f"MCP server {server.name}: the Docker image {server.docker_image!r} is not on the gateway host"
        ) from None
    except DockerException as exc:
        raise SandboxUnavailable(f"MCP server {server.name}: the container could not be started: {exc}") from None
    return container, sock


def _stop(container: Any, sock: Any) -> None:
    from docker.errors import DockerException

    with contextlib.suppress(OSError):
        sock.close()
    with contextlib.suppress(DockerException):
        container.stop(timeout=STOP_TIMEOUT_SECONDS)  # auto_remove deletes it


def _raw(sock: Any) -> Any:
    return getattr(sock, "_sock", sock)  # SocketIO wraps the socket that has sendall


@asynccontextmanager
async def docker_stdio_client(server: McpServerConfig, root: Path | None) -> AsyncIterator[TransportStreams]:
    if root is None:
        raise SandboxUnavailable(f"MCP server {server.name} runs in a sandbox and needs a workspace")
    from docker.utils.socket import frames_iter

    container, sock = await anyio.to_thread.run_sync(_start, server, root)
    read_send, read_receive = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_send, write_receive = anyio.create_memory_object_stream[SessionMessage](0)

    def pump(send: MemoryObjectSendStream[SessionMessage | Exception]) -> None:
        with contextlib.suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            for line in lines_from_frames(frames_iter(sock, tty=False)):
                anyio.from_thread.run(send.send, _parse(line))

    async def reader() -> None:
        async with read_send:
            await anyio.to_thread.run_sync(pump, read_send, abandon_on_cancel=True)

    async def writer() -> None:
        async with write_receive:
            async for message in write_receive:
                data = message.message.model_dump_json(by_alias=True, exclude_unset=True) + "\n"
                await anyio.to_thread.run_sync(_raw(sock).sendall, data.encode())

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(reader)
            group.start_soon(writer)
            try:
                yield read_receive, write_send
            finally:
                group.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_stop, container, sock)
        read_receive.close()
        write_send.close()
