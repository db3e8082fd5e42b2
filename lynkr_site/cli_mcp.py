"""``lynkr mcp import FILE`` and ``lynkr mcp list``: MCP servers from manifests into the database, and a listing."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def cmd_mcp_import(args: argparse.Namespace) -> int:
    from mcp_app.manifest import ManifestError
    from mcp_app.services import (
        ImportReport,
        mcp_server_import,
        mcp_server_import_file,
        mcp_server_import_from_settings,
    )

    reports: list[ImportReport]
    if args.file == "-":
        try:
            data = json.loads(sys.stdin.read())
            reports = [mcp_server_import(data=data, source="stdin", dry_run=args.dry_run)]
        except json.JSONDecodeError as exc:
            reports = [ImportReport(source="stdin", error=f"not valid JSON: line {exc.lineno}: {exc.msg}")]
        except ManifestError as exc:
            reports = [ImportReport(source="stdin", error=str(exc).removeprefix("stdin: "))]
    elif args.file:
        reports = [mcp_server_import_file(path=Path(args.file), dry_run=args.dry_run)]
    else:
        reports = mcp_server_import_from_settings(dry_run=args.dry_run)
        if not reports:
            print("lynkr: no MCP manifest found (MCP_SERVER_MANIFEST, MCP_MANIFEST_DIRS)", file=sys.stderr)
            return 1
    for report in reports:
        print("\n".join(report.lines()), file=sys.stdout if report.ok else sys.stderr)
    if args.dry_run:
        print("(dry run: nothing was written)")
    return 0 if all(report.ok for report in reports) else 1


def _row(server: Any) -> list[str]:
    from mcp_app.selectors import mcp_server_config

    config = mcp_server_config(server)
    target = " ".join([server.command, *map(str, server.args or ())]) if server.transport == "stdio" else server.url
    users, groups = server.allowed_users.count(), server.allowed_groups.count()
    access = f"{users} user(s), {groups} group(s)" if users or groups else "everyone"
    state = "enabled" if server.enabled else "disabled"
    return [server.name, server.transport, state, config.runtime, access, server.source, target]


def cmd_mcp_list(args: argparse.Namespace) -> int:
    from mcp_app.models import McpServer

    servers = list(McpServer.objects.order_by("name"))
    if not servers:
        print("no MCP servers (add one in admin or run `lynkr mcp import FILE`)")
        return 0
    rows = [["NAME", "TRANSPORT", "STATE", "SANDBOX", "MAY USE", "SOURCE", "COMMAND / URL"]]
    rows += [_row(server) for server in servers]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]]))
    if args.tools:
        from mcp_app.services import mcp_server_probe

        failed = False
        for server in servers:
            if not server.enabled:
                continue
            result = mcp_server_probe(server_id=server.pk)
            failed |= not result.ok
            tools = ", ".join(result.tools) if result.ok else f"FAILED: {result.message}"
            print(f"{server.name}: {tools}")
        return 1 if failed else 0
    return 0


def add_parsers(sub: Any) -> None:
    """Add ``lynkr mcp ...`` to the ``lynkr`` command's subparsers."""
    mcp = sub.add_parser("mcp", help="MCP servers: import manifests, list")
    mcp_sub = mcp.add_subparsers(dest="mcp_command", required=True)
    import_ = mcp_sub.add_parser(
        "import",
        help='create or update MCP servers from a manifest ({"servers": [...]}, a list, or {"mcpServers": {...}})',
    )
    import_.add_argument(
        "file",
        nargs="?",
        metavar="FILE",
        help="the JSON file, - for standard input; default: MCP_SERVER_MANIFEST and every *.json of MCP_MANIFEST_DIRS",
    )
    import_.add_argument("--dry-run", action="store_true", help="report what would change, write nothing")
    import_.set_defaults(func=cmd_mcp_import)
    listing = mcp_sub.add_parser("list", help="list the MCP servers")
    listing.add_argument("--tools", action="store_true", help="also connect to each enabled server and list its tools")
    listing.set_defaults(func=cmd_mcp_list)
