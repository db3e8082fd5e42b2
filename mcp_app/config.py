"""The MCP settings this app reads, in one place (defaults until lynkr_site/settings declares them).

Lynkr's variables: MCP_SERVER_MANIFEST (one manifest file), MCP_MANIFEST_DIRS (directories of *.json manifests,
default ~/.claude/mcp), MCP_SANDBOX_ENABLED (stdio servers run in bubblewrap unless a server says otherwise,
default true), MCP_SANDBOX_IMAGE (the Docker image of servers with the docker runtime and no image of their own).
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

DEFAULT_MANIFEST_DIRS = ("~/.claude/mcp",)


def manifest_file() -> str:
    return str(getattr(settings, "LYNKR_MCP_SERVER_MANIFEST", "") or "")


def manifest_dirs() -> list[str]:
    return list(getattr(settings, "LYNKR_MCP_MANIFEST_DIRS", DEFAULT_MANIFEST_DIRS))


def sandbox_enabled() -> bool:
    return bool(getattr(settings, "LYNKR_MCP_SANDBOX_ENABLED", True))


def sandbox_image() -> str:
    return str(getattr(settings, "LYNKR_MCP_SANDBOX_IMAGE", "") or "")


def output_max_bytes() -> int:
    return int(settings.LYNKR_TOOL_OUTPUT_MAX_BYTES)


def data_dir() -> Path:
    return Path(settings.DATA_DIR)
