"""Opening an MCP server's transport with the official SDK: stdio (plain, in bubblewrap, or in Docker),
Streamable HTTP and SSE. Each is an async context manager yielding the SDK's (read, write) stream pair."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, TextIO, cast

import httpx2
from mcp.client._transport import TransportStreams
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, get_default_environment, stdio_client
from mcp.client.streamable_http import streamable_http_client

from mcp_app import config
from mcp_app.info import RUNTIME_BUBBLEWRAP, RUNTIME_DOCKER, SSE, STDIO, STREAMABLE_HTTP, McpServerConfig
from mcp_app.sandbox import SandboxUnavailable, bubblewrap_argv, sandbox_environment

# An SSE stream may stay quiet between events for this long (the SDK's default) before it counts as broken.
SSE_READ_TIMEOUT = 300.0


def stdio_parameters(server: McpServerConfig, root: Path | None) -> StdioServerParameters:
    """How to start a stdio server: directly (the SDK adds its small default environment: HOME, PATH, USER ...),
    or wrapped in bwrap with only the allowlisted environment."""
    if server.runtime != RUNTIME_BUBBLEWRAP:
        return StdioServerParameters(command=server.command, args=list(server.args), env=dict(server.env))
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable(
            f"MCP server {server.name} uses the bubblewrap sandbox but bwrap is not installed on the gateway host"
        )
    if root is None:
        raise SandboxUnavailable(f"MCP server {server.name} runs in a sandbox and needs a workspace")
    # Only the allowlist of the gateway's environment passes, never the whole of it. The SDK starts bwrap with
    # its own few defaults (HOME, USER, SHELL ...) merged under these; bwrap unsets the ones not wanted.
    env = sandbox_environment(os.environ, server.env)
    argv = bubblewrap_argv(
        bwrap=bwrap,
        command=server.command,
        args=server.args,
        root=root,
        unset=sorted(set(get_default_environment()) - set(env)),
        network=server.sandbox_network,
        hidden=(config.data_dir(),),
        path_env=env.get("PATH", ""),
    )
    return StdioServerParameters(command=argv[0], args=argv[1:], env=env)


@asynccontextmanager
async def transport_open(
    server: McpServerConfig, root: Path | None, errlog: IO[str] | None
) -> AsyncIterator[TransportStreams]:
    """The SDK streams of ``server``; ``root`` is the workspace a sandboxed server sees (None: not sandboxed)."""
    if server.transport == STDIO and server.runtime == RUNTIME_DOCKER:
        from mcp_app.docker_runtime import docker_stdio_client

        async with docker_stdio_client(server, root) as streams:
            yield streams
    elif server.transport == STDIO:
        stderr = cast(TextIO, errlog) if errlog is not None else sys.stderr
        async with stdio_client(stdio_parameters(server, root), errlog=stderr) as streams:
            yield streams
    elif server.transport == STREAMABLE_HTTP:
        timeout = httpx2.Timeout(server.timeout_seconds, read=SSE_READ_TIMEOUT)
        async with (
            httpx2.AsyncClient(headers=dict(server.headers), timeout=timeout) as http,
            streamable_http_client(server.url, http_client=http) as streams,
        ):
            yield streams
    elif server.transport == SSE:
        async with sse_client(
            server.url, headers=dict(server.headers), timeout=server.timeout_seconds, sse_read_timeout=SSE_READ_TIMEOUT
        ) as streams:
            yield streams
    else:
        raise ValueError(f"unknown MCP transport {server.transport!r}")
