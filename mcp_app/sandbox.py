"""Sandboxes for stdio MCP servers: the bubblewrap argv and the Docker container spec (pure: no Django, no I/O).

Bubblewrap (https://github.com/containers/bubblewrap, bwrap(1)): the server sees the host read-only, a private
empty /tmp (also its HOME), the workspace root as the only writable host directory (and its working directory),
no network unless the server is allowed one (``--unshare-all`` then ``--share-net``), its own PID namespace, no
capabilities, and only the allowlisted environment plus its own configured variables (handed to bwrap in its
process environment, not as ``--setenv`` arguments: a command line is readable by every local user in /proc,
and those variables hold credentials; what bwrap inherits beyond them is removed with ``--unsetenv``, which
amounts to ``--clearenv`` plus the allowlist). The gateway's data
directory (database, secret key, queue) is covered with an empty tmpfs. ``--die-with-parent`` ends the server
with the gateway; ``--new-session`` keeps it off the gateway's terminal (TIOCSTI).

Docker (https://docker-py.readthedocs.io/en/7.1.0/containers.html): ``docker_container_spec`` gives the keyword
arguments of ``client.containers.create`` / ``run``: read-only root filesystem, no-new-privileges, every
capability dropped, memory / CPU / PID limits, no network unless allowed, the workspace root as the only mount
(read-write), a tmpfs /tmp, only the server's own variables (and HOME) in the environment, and stdin kept open
(the MCP stdio transport).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mcp_app.info import RUNTIME_BUBBLEWRAP, RUNTIME_DOCKER, RUNTIME_NONE, STDIO, McpServerConfig
from workspace.bwrap import hidden_mounts, kept_under_tmp

# From the gateway's own environment only these reach a sandboxed server (no LYNKR_*, *_API_KEY, DATABASE_URL).
ENV_ALLOWLIST = ("PATH", "LANG", "LC_ALL")
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
SANDBOX_TMP = "/tmp"  # noqa: S108 - a private, empty tmpfs inside the sandbox
SANDBOX_HOME = "/tmp"  # noqa: S108 - inside the private /tmp: no dotfile of the gateway's user is visible

DOCKER_MEMORY_LIMIT = "512m"
DOCKER_NANO_CPUS = 1_000_000_000  # one CPU
DOCKER_PIDS_LIMIT = 256
DOCKER_TMPFS = {SANDBOX_TMP: "rw,noexec,nosuid,nodev,size=64m"}
DOCKER_LABEL = "lynkr.mcp.server"


class SandboxUnavailable(RuntimeError):
    """The server's sandbox cannot be used here (bwrap missing, no Docker image); the message says which."""


def runtime_resolve(*, sandbox: str, transport: str, sandbox_enabled: bool, bwrap_available: bool) -> str:
    """The runtime a server runs in: remote (HTTP) servers in none; "auto" is bubblewrap when MCP_SANDBOX_ENABLED
    and bwrap is installed, else none; an explicit choice stays (and fails at connect time when unavailable)."""
    if transport != STDIO:
        return RUNTIME_NONE
    if sandbox == "auto":
        return RUNTIME_BUBBLEWRAP if sandbox_enabled and bwrap_available else RUNTIME_NONE
    if sandbox in (RUNTIME_NONE, RUNTIME_BUBBLEWRAP, RUNTIME_DOCKER):
        return sandbox
    raise ValueError(f"unknown sandbox {sandbox!r}")


def sandbox_environment(host: Mapping[str, str], server_env: Mapping[str, str]) -> dict[str, str]:
    """The allowlisted variables of the gateway, HOME in the private /tmp, then the server's own variables."""
    env = {name: host[name] for name in ENV_ALLOWLIST if name in host}
    env.setdefault("PATH", DEFAULT_PATH)
    env["HOME"] = SANDBOX_HOME
    env.update(server_env)
    return env


def bubblewrap_argv(
    *,
    bwrap: str,
    command: str,
    args: Sequence[str],
    root: Path,
    unset: Sequence[str] = (),
    network: bool = False,
    hidden: Sequence[Path] = (),
    path_env: str = "",
) -> list[str]:
    """bwrap's argv around ``command args``; ``unset`` names inherited variables the server must not see. Mount
    order matters: a later mount covers an earlier one, so a hidden directory holding the root (the default
    workspaces directory is inside the data directory) is covered before the root is bound, and one inside the
    root after it."""
    real_root = Path(os.path.realpath(root))
    around, within = hidden_mounts(hidden, real_root)
    argv = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", SANDBOX_TMP]
    argv += kept_under_tmp([command, *args], path_env, real_root)
    argv += [*around, "--bind", str(real_root), str(real_root), *within, "--chdir", str(real_root)]
    argv += ["--unshare-all", *(["--share-net"] if network else [])]
    argv += ["--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    for name in sorted(unset):
        argv += ["--unsetenv", name]
    return [*argv, "--", command, *args]


def docker_container_spec(
    server: McpServerConfig, workspace_root: Path, *, uid: int | None = None, gid: int | None = None
) -> dict[str, Any]:
    """The keyword arguments of ``containers.create`` for ``server`` with ``workspace_root`` mounted at the same
    path. The container runs as the gateway's uid:gid so files it writes in the workspace belong to the gateway."""
    if not server.docker_image:
        raise SandboxUnavailable(
            f"MCP server {server.name} uses the docker sandbox but has no image (set docker_image or MCP_SANDBOX_IMAGE)"
        )
    root = str(Path(os.path.realpath(workspace_root)))
    command = [server.command, *server.args] if server.command else list(server.args)
    environment = {"HOME": SANDBOX_HOME, **server.env}
    user_id = os.getuid() if uid is None else uid
    group_id = os.getgid() if gid is None else gid
    return {
        "image": server.docker_image,
        "command": command or None,
        "stdin_open": True,  # the MCP stdio transport: JSON-RPC lines on stdin, answers on stdout
        "tty": False,
        "detach": True,
        "auto_remove": True,
        "read_only": True,
        "security_opt": ["no-new-privileges"],
        "cap_drop": ["ALL"],
        "mem_limit": DOCKER_MEMORY_LIMIT,
        "memswap_limit": DOCKER_MEMORY_LIMIT,  # no swap beyond the memory limit
        "nano_cpus": DOCKER_NANO_CPUS,
        "pids_limit": DOCKER_PIDS_LIMIT,
        "network_mode": "bridge" if server.sandbox_network else "none",
        "volumes": {root: {"bind": root, "mode": "rw"}},
        "tmpfs": dict(DOCKER_TMPFS),
        "working_dir": root,
        "environment": environment,
        "user": f"{user_id}:{group_id}",
        "init": True,  # reaps the server's children
        "labels": {DOCKER_LABEL: server.name},
    }
