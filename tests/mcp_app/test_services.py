from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from lynkr_site.cli_mcp import add_parsers, cmd_mcp_import, cmd_mcp_list
from mcp_app.manifest import ManifestError
from mcp_app.models import McpServer, McpServerSource
from mcp_app.services import mcp_server_import, mcp_server_import_file, mcp_server_import_from_settings

pytestmark = pytest.mark.django_db

MANIFEST = {
    "servers": [
        {"name": "files", "command": "npx", "args": ["-y", "server-files"], "env": {"TOKEN": "s3cret-value"}},
        {"name": "remote", "transport": "http", "url": "https://mcp.example/mcp", "headers": {"X-Key": "k-123"}},
    ]
}
MCP_SERVERS = {"mcpServers": {"github": {"command": "gh-mcp", "args": ["stdio"], "env": {"GH": "tok"}}}}


def _parse(argv: list[str]) -> Any:
    parser = argparse.ArgumentParser(prog="lynkr")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_import_creates_rows_from_a_lynkr_manifest() -> None:
    report = mcp_server_import(data=MANIFEST, source="team.json")
    assert report.created == ("files", "remote")
    files = McpServer.objects.get(name="files")
    assert (files.transport, files.command, files.args, files.env) == (
        "stdio",
        "npx",
        ["-y", "server-files"],
        {"TOKEN": "s3cret-value"},
    )
    assert (files.source, files.source_detail) == (McpServerSource.MANIFEST, "team.json")
    remote = McpServer.objects.get(name="remote")
    assert (remote.transport, remote.url, remote.headers) == (
        "streamable_http",
        "https://mcp.example/mcp",
        {"X-Key": "k-123"},
    )


def test_import_from_mcp_servers_json_marks_its_source() -> None:
    report = mcp_server_import(data=MCP_SERVERS, source="claude_desktop_config.json")
    assert report.created == ("github",)
    assert McpServer.objects.get(name="github").source == McpServerSource.MCP_SERVERS


def test_reimport_updates_changed_rows_and_leaves_admin_rows_alone() -> None:
    mcp_server_import(data=MANIFEST, source="team.json")
    McpServer.objects.filter(name="remote").update(source=McpServerSource.ADMIN, url="https://edited.example/mcp")
    changed = json.loads(json.dumps(MANIFEST))
    changed["servers"][0]["args"] = ["-y", "server-files", "/srv"]
    changed["servers"][1]["url"] = "https://other.example/mcp"
    report = mcp_server_import(data=changed, source="team.json")
    assert report.updated == ("files",)
    assert report.skipped == ("remote: created or edited in admin, left as it is",)
    assert McpServer.objects.get(name="files").args == ["-y", "server-files", "/srv"]
    assert McpServer.objects.get(name="remote").url == "https://edited.example/mcp"
    assert mcp_server_import(data=changed, source="team.json").unchanged == ("files",)


def test_import_keeps_admin_settings_of_imported_rows() -> None:
    mcp_server_import(data=MANIFEST, source="team.json")
    McpServer.objects.filter(name="files").update(enabled=False, sandbox="docker", tool_deny=["rm_*"])
    changed = json.loads(json.dumps(MANIFEST))
    changed["servers"][0]["command"] = "bunx"
    mcp_server_import(data=changed, source="team.json")
    files = McpServer.objects.get(name="files")
    assert (files.command, files.enabled, files.sandbox, files.tool_deny) == ("bunx", False, "docker", ["rm_*"])


def test_dry_run_writes_nothing() -> None:
    report = mcp_server_import(data=MANIFEST, source="team.json", dry_run=True)
    assert report.created == ("files", "remote")
    assert "would create 2" in report.summary()
    assert not McpServer.objects.exists()


def test_malformed_data_raises_and_writes_nothing() -> None:
    with pytest.raises(ManifestError, match="servers\\[1\\]"):
        mcp_server_import(data={"servers": [{"name": "ok", "command": "x"}, {"name": "bad"}]}, source="m.json")
    assert not McpServer.objects.exists()


def test_import_file_reports_an_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("[{", encoding="utf-8")
    report = mcp_server_import_file(path=path)
    assert not report.ok
    assert report.error.startswith("not valid JSON")


def test_import_from_settings_reads_the_manifest_and_the_directories(tmp_path: Path) -> None:
    folder = tmp_path / "mcp"
    folder.mkdir()
    (folder / "desktop.json").write_text(json.dumps(MCP_SERVERS), encoding="utf-8")
    main = tmp_path / "lynkr.json"
    main.write_text(json.dumps(MANIFEST), encoding="utf-8")
    with override_settings(LYNKR_MCP_SERVER_MANIFEST=str(main), LYNKR_MCP_MANIFEST_DIRS=[str(folder)]):
        reports = mcp_server_import_from_settings()
    assert [r.source for r in reports] == [str(main), str(folder / "desktop.json")]
    assert set(McpServer.objects.values_list("name", flat=True)) == {"files", "remote", "github"}


def test_cli_import_and_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "claude_desktop_config.json"
    path.write_text(json.dumps(MCP_SERVERS), encoding="utf-8")
    assert cmd_mcp_import(_parse(["mcp", "import", str(path), "--dry-run"])) == 0
    assert "would create 1" in capsys.readouterr().out
    assert not McpServer.objects.exists()
    assert cmd_mcp_import(_parse(["mcp", "import", str(path)])) == 0
    assert McpServer.objects.get(name="github").command == "gh-mcp"
    capsys.readouterr()
    assert cmd_mcp_list(_parse(["mcp", "list"])) == 0
    out = capsys.readouterr().out
    assert "github" in out and "gh-mcp stdio" in out and "everyone" in out
    assert "tok" not in out  # env values are never printed


def test_cli_import_of_a_malformed_file_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"servers": [{"name": "x"}]}), encoding="utf-8")
    assert cmd_mcp_import(_parse(["mcp", "import", str(path)])) == 1
    assert 'a stdio server needs a "command"' in capsys.readouterr().err
