"""Writes and actions on MCP servers: importing manifests, probing a server, restarting its sessions."""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction

from mcp_app import config
from mcp_app.manifest import (
    FORMAT_MCP_SERVERS,
    ManifestError,
    ServerManifest,
    manifest_files,
    manifest_parse,
    manifest_read,
)
from mcp_app.models import McpServer, McpServerSource
from mcp_app.selectors import mcp_server_get_config

logger = logging.getLogger(__name__)

_IMPORTED_FIELDS = ("transport", "command", "args", "env", "url", "headers")


@dataclass(frozen=True, slots=True)
class ImportReport:
    source: str
    dry_run: bool = False
    created: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()  # "name: why"
    warnings: tuple[str, ...] = ()
    error: str = ""  # the whole source could not be read

    @property
    def ok(self) -> bool:
        return not self.error

    def summary(self) -> str:
        if self.error:
            return f"{self.source}: {self.error}"
        verb = "would create" if self.dry_run else "created"
        parts = [f"{verb} {len(self.created)}", f"updated {len(self.updated)}", f"unchanged {len(self.unchanged)}"]
        if self.dry_run:
            parts[1] = f"would update {len(self.updated)}"
        if self.skipped:
            parts.append(f"skipped {len(self.skipped)}")
        return f"{self.source}: " + ", ".join(parts)

    def lines(self) -> list[str]:
        lines = [self.summary()]
        for label, names in (("created", self.created), ("updated", self.updated), ("skipped", self.skipped)):
            lines += [f"  {label}: {name}" for name in names]
        lines += [f"  warning: {warning}" for warning in self.warnings]
        return lines


def _values(manifest: ServerManifest, source: str) -> dict[str, Any]:
    return {
        "transport": manifest.transport,
        "command": manifest.command,
        "args": list(manifest.args),
        "env": dict(manifest.env),
        "url": manifest.url,
        "headers": dict(manifest.headers),
        "source": McpServerSource.MCP_SERVERS if manifest.format == FORMAT_MCP_SERVERS else McpServerSource.MANIFEST,
        "source_detail": source[:500],
    }


def mcp_server_import(*, data: Any, source: str, dry_run: bool = False) -> ImportReport:
    """Create or update McpServer rows (by name) from decoded manifest JSON of either shape.

    ``source`` says where the data came from (a file path): it is kept in ``source_detail`` and names the report.
    Rows created or edited in admin are never changed. Only how to reach a server is imported (transport,
    command, args, env, url, headers): enabling, sandbox, access and tool lists stay as the admin set them.
    Raises ManifestError (nothing written) when the data is malformed.
    """
    manifests = manifest_parse(data, label=source)
    created: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []
    skipped: list[str] = []
    with transaction.atomic():
        for manifest in manifests:
            values = _values(manifest, source)
            row = McpServer.objects.select_for_update().filter(name=manifest.name).first()
            if row is None:
                created.append(manifest.name)
                if not dry_run:
                    McpServer.objects.create(name=manifest.name, **values)
                continue
            if row.source == McpServerSource.ADMIN:
                skipped.append(f"{manifest.name}: created or edited in admin, left as it is")
                continue
            if all(getattr(row, field) == values[field] for field in _IMPORTED_FIELDS):
                unchanged.append(manifest.name)
                continue
            updated.append(manifest.name)
            if not dry_run:
                for field, value in values.items():
                    setattr(row, field, value)
                row.save()
    report = ImportReport(
        source=source,
        dry_run=dry_run,
        created=tuple(created),
        updated=tuple(updated),
        unchanged=tuple(unchanged),
        skipped=tuple(skipped),
        warnings=tuple(warning for manifest in manifests for warning in manifest.warnings),
    )
    logger.info("MCP import %s", report.summary())
    return report


def mcp_server_import_file(*, path: Path, dry_run: bool = False) -> ImportReport:
    """Import one manifest file; a file that cannot be read or parsed gives a report with ``error`` set."""
    try:
        return mcp_server_import(data=manifest_read(path), source=str(path), dry_run=dry_run)
    except ManifestError as exc:
        return ImportReport(source=str(path), dry_run=dry_run, error=str(exc).removeprefix(f"{path}: "))


def mcp_server_import_from_settings(*, dry_run: bool = False) -> list[ImportReport]:
    """Import MCP_SERVER_MANIFEST and every *.json of MCP_MANIFEST_DIRS (the admin action; at start)."""
    paths = manifest_files(manifest=config.manifest_file(), directories=config.manifest_dirs())
    return [mcp_server_import_file(path=path, dry_run=dry_run) for path in paths]


@dataclass(frozen=True, slots=True)
class ProbeResult:
    ok: bool
    tools: tuple[str, ...] = ()
    message: str = ""
    detail: str = ""  # a stdio server's last stderr lines (admins only)


def mcp_server_probe(*, server_id: int) -> ProbeResult:
    """Connect (initialize) and list the tools now, bypassing the cache. A sandboxed server sees an empty
    temporary workspace, closed again afterwards."""
    from mcp_app.client import McpClientError, mcp_manager  # the MCP SDK (~21 MB) loads only when a server is used:
    # `lynkr serve` imports this module at start to import manifests, and the gateway process stays without it

    server = mcp_server_get_config(server_id=server_id)
    root = Path(tempfile.mkdtemp(prefix="lynkr-mcp-probe-")) if server.sandboxed else None
    manager = mcp_manager()
    try:
        tools = manager.list_tools(server, workspace_root=root, refresh=True)
    except McpClientError as exc:
        return ProbeResult(ok=False, message=str(exc), detail=exc.detail)
    finally:
        if root is not None:
            manager.close_session(server, workspace_root=root)
            shutil.rmtree(root, ignore_errors=True)
    return ProbeResult(ok=True, tools=tuple(tool.name for tool in tools), message=f"{len(tools)} tools")


def mcp_server_restart(*, server_id: int) -> None:
    """Close every session of the server and forget its crash count; the next call starts it afresh."""
    from mcp_app.client import mcp_manager  # the SDK: see mcp_server_probe()

    mcp_manager().restart(server_id)
