"""Frozen values describing an MCP server to the client and the sandboxes (never model instances; no Django)."""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

STDIO = "stdio"
STREAMABLE_HTTP = "streamable_http"
SSE = "sse"

# Starting a server (spawning it, ``npx`` fetching a package, initialize, the first tools/list) may take longer
# than answering one call: it gets at least this long.
STARTUP_TIMEOUT_SECONDS = 60.0

RUNTIME_NONE = "none"
RUNTIME_BUBBLEWRAP = "bubblewrap"
RUNTIME_DOCKER = "docker"


@dataclass(frozen=True, slots=True)
class McpServerConfig:
    id: int
    name: str
    transport: str = STDIO
    command: str = ""
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    url: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: float = 30.0
    runtime: str = RUNTIME_NONE  # the sandbox actually used: none, bubblewrap or docker ("auto" is resolved)
    sandbox_network: bool = False
    docker_image: str = ""
    tool_allow: tuple[str, ...] = ()
    tool_deny: tuple[str, ...] = ()

    def __repr__(self) -> str:
        # env and headers hold credentials: a repr in a log or a traceback shows their names only.
        return (
            f"McpServerConfig(id={self.id}, name={self.name!r}, transport={self.transport!r}, "
            f"runtime={self.runtime!r}, env={sorted(self.env)}, headers={sorted(self.headers)})"
        )

    __str__ = __repr__

    @property
    def startup_timeout(self) -> float:
        return max(self.timeout_seconds, STARTUP_TIMEOUT_SECONDS)

    @property
    def sandboxed(self) -> bool:
        return self.transport == STDIO and self.runtime != RUNTIME_NONE

    def fingerprint(self) -> str:
        """Changes when anything about how to reach the server changes (a live session is then replaced)."""
        material = {
            "transport": self.transport,
            "command": self.command,
            "args": list(self.args),
            "env": dict(sorted(self.env.items())),
            "url": self.url,
            "headers": dict(sorted(self.headers.items())),
            "runtime": self.runtime,
            "network": self.sandbox_network,
            "image": self.docker_image,
        }
        return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]

    def allows_tool(self, tool: str) -> bool:
        """The server's own allow/deny globs, matched against the server's tool name (not mcp_<server>_<tool>)."""
        if any(fnmatch.fnmatchcase(tool, pattern) for pattern in self.tool_deny):
            return False
        return not self.tool_allow or any(fnmatch.fnmatchcase(tool, pattern) for pattern in self.tool_allow)


@dataclass(frozen=True, slots=True)
class McpTool:
    """One tool as the server lists it."""

    name: str
    description: str
    input_schema: Mapping[str, Any]
    read_only: bool = False
