"""Parsing MCP server manifests (pure: no Django, no I/O but ``manifest_files`` and ``manifest_read``).

Two shapes are read:

- Lynkr's manifests: ``{"servers": [...]}`` or a bare array of ``{name, command, args, env, transport?, url?,
  headers?}`` (one server object alone is accepted too);
- the ``mcpServers`` object of Claude Desktop's ``claude_desktop_config.json`` and Claude Code's ``.mcp.json``:
  ``{"mcpServers": {"<name>": {"command", "args", "env"} | {"type": "http" | "sse", "url", "headers"}}}``
  (https://docs.anthropic.com/en/docs/claude-code/mcp#project-scope). Claude Code expands ``${VAR}`` and
  ``${VAR:-default}`` from its own environment when it starts a server; the gateway has no such environment for
  its users, so placeholders are kept as written and reported as warnings (set the real value in admin).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

FORMAT_MANIFEST = "manifest"
FORMAT_MCP_SERVERS = "mcpservers"

MAX_NAME_LENGTH = 40
_TRANSPORTS = {
    "stdio": "stdio",
    "http": "streamable_http",
    "streamable_http": "streamable_http",
    "streamable-http": "streamable_http",
    "streamablehttp": "streamable_http",
    "sse": "sse",
}
_PLACEHOLDER = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}")
_NOT_SLUG = re.compile(r"[^a-z0-9_-]+")


class ManifestError(ValueError):
    """The manifest cannot be read; the message says where (file, server, field) and what is wrong."""


@dataclass(frozen=True, slots=True)
class ServerManifest:
    name: str
    transport: str
    format: str  # FORMAT_MANIFEST or FORMAT_MCP_SERVERS
    command: str = ""
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    url: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"ServerManifest(name={self.name!r}, transport={self.transport!r}, env={sorted(self.env)})"


def slug_name(raw: str) -> str:
    """A server name as a slug ("My Server" -> "my-server"), at most MAX_NAME_LENGTH characters."""
    return _NOT_SLUG.sub("-", raw.strip().lower()).strip("-")[:MAX_NAME_LENGTH].strip("-")


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str | int | float) for item in value):
        raise ManifestError(f"{where}: expected a list of strings")
    return tuple(str(item) for item in value)


def _mapping(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ManifestError(f"{where}: expected an object of names to string values")
    result: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(item, str | int | float | bool):
            raise ManifestError(f"{where}.{key}: expected a string value")
        result[str(key)] = str(item).lower() if isinstance(item, bool) else str(item)
    return result


def _text(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ManifestError(f"{where}.{key}: expected a string")
    return value.strip()


def _placeholders(name: str, manifest: ServerManifest) -> tuple[str, ...]:
    found: list[str] = []
    places: list[tuple[str, str]] = [("command", manifest.command), ("url", manifest.url)]
    places += [(f"args[{i}]", arg) for i, arg in enumerate(manifest.args)]
    places += [(f"env.{key}", value) for key, value in manifest.env.items()]
    places += [(f"headers.{key}", value) for key, value in manifest.headers.items()]
    for where, value in places:
        for match in _PLACEHOLDER.findall(value):
            found.append(f"{name}: {where} holds {match}, stored as written; set the real value in admin")
    return tuple(found)


def _server(entry: Any, *, where: str, fallback_name: str, fmt: str) -> ServerManifest:
    if not isinstance(entry, dict):
        raise ManifestError(f"{where}: expected an object describing a server")
    raw_name = entry.get("name", fallback_name)
    if not isinstance(raw_name, str) or not raw_name.strip():
        raise ManifestError(f'{where}: a server needs a "name"')
    name = slug_name(raw_name)
    if not name:
        raise ManifestError(f"{where}: the name {raw_name!r} has no letters or digits")
    where = f"{where} ({raw_name})" if fmt == FORMAT_MANIFEST else where
    url = _text(entry, "url", where)
    raw_transport = entry.get("transport", entry.get("type"))
    if raw_transport is None:
        raw_transport = "http" if url and not entry.get("command") else "stdio"
    if not isinstance(raw_transport, str) or raw_transport.lower() not in _TRANSPORTS:
        raise ManifestError(f"{where}: unknown transport {raw_transport!r} (expected stdio, http or sse)")
    transport = _TRANSPORTS[raw_transport.lower()]
    command = _text(entry, "command", where)
    if transport == "stdio" and not command:
        raise ManifestError(f'{where}: a stdio server needs a "command"')
    if transport != "stdio" and not url:
        raise ManifestError(f'{where}: a {raw_transport} server needs a "url"')
    if url and not url.startswith(("http://", "https://")):
        raise ManifestError(f"{where}.url: expected an http:// or https:// URL")
    manifest = ServerManifest(
        name=name,
        transport=transport,
        format=fmt,
        command=command,
        args=_strings(entry.get("args"), f"{where}.args"),
        env=_mapping(entry.get("env"), f"{where}.env"),
        url=url,
        headers=_mapping(entry.get("headers"), f"{where}.headers"),
    )
    warnings = _placeholders(name, manifest)
    if name != raw_name:
        warnings = (f"{raw_name!r} is stored as {name!r} (names are slugs)", *warnings)
    return replace(manifest, warnings=warnings)


def _unique(servers: list[ServerManifest], label: str) -> list[ServerManifest]:
    seen: set[str] = set()
    for server in servers:
        if server.name in seen:
            raise ManifestError(f"{label}: the server name {server.name!r} appears twice")
        seen.add(server.name)
    return servers


def manifest_parse(data: Any, *, label: str = "manifest") -> list[ServerManifest]:
    """The servers of already-decoded JSON in either shape; ManifestError names the offending entry."""
    if isinstance(data, dict) and "mcpServers" in data:
        servers = data["mcpServers"]
        if not isinstance(servers, dict):
            raise ManifestError(f'{label}: "mcpServers" must be an object of server name to settings')
        return _unique(
            [
                _server(entry, where=f"{label}: mcpServers.{key}", fallback_name=str(key), fmt=FORMAT_MCP_SERVERS)
                for key, entry in servers.items()
            ],
            label,
        )
    if isinstance(data, dict) and "servers" in data:
        entries = data["servers"]
        if not isinstance(entries, list):
            raise ManifestError(f'{label}: "servers" must be a list')
    elif isinstance(data, list):
        entries = data
    elif isinstance(data, dict) and "name" in data:
        entries = [data]
    else:
        raise ManifestError(f'{label}: expected {{"servers": [...]}}, a list of servers, or {{"mcpServers": {{...}}}}')
    return _unique(
        [
            _server(entry, where=f"{label}: servers[{index}]", fallback_name="", fmt=FORMAT_MANIFEST)
            for index, entry in enumerate(entries)
        ],
        label,
    )


def manifest_loads(text: str, *, label: str = "manifest") -> list[ServerManifest]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{label}: not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    return manifest_parse(data, label=label)


def manifest_read(path: Path) -> Any:
    """The decoded JSON of a manifest file (ManifestError when unreadable or not JSON)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}") from None


def manifest_files(*, manifest: str, directories: Iterable[str]) -> list[Path]:
    """MCP_SERVER_MANIFEST (when set) then every *.json of MCP_MANIFEST_DIRS that exist, sorted, without repeats."""
    found: list[Path] = []
    if manifest:
        found.append(Path(manifest).expanduser())
    for directory in directories:
        folder = Path(directory).expanduser()
        if folder.is_dir():
            found.extend(sorted(path for path in folder.glob("*.json") if path.is_file()))
    unique: list[Path] = []
    for path in found:
        if path not in unique:
            unique.append(path)
    return unique
