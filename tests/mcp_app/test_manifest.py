from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcp_app.manifest import (
    FORMAT_MANIFEST,
    FORMAT_MCP_SERVERS,
    ManifestError,
    manifest_files,
    manifest_loads,
    manifest_parse,
    manifest_read,
    slug_name,
)


def test_lynkr_manifest_with_servers_key() -> None:
    servers = manifest_parse(
        {
            "servers": [
                {"name": "files", "command": "npx", "args": ["-y", "server-files", "/srv"], "env": {"DEBUG": "1"}},
                {
                    "name": "remote",
                    "transport": "streamable_http",
                    "url": "https://mcp.example/mcp",
                    "headers": {"Authorization": "Bearer t"},
                },
            ]
        }
    )
    assert [s.name for s in servers] == ["files", "remote"]
    files, remote = servers
    assert (files.transport, files.command, files.args, dict(files.env)) == (
        "stdio",
        "npx",
        ("-y", "server-files", "/srv"),
        {"DEBUG": "1"},
    )
    assert files.format == FORMAT_MANIFEST
    assert (remote.transport, remote.url, dict(remote.headers)) == (
        "streamable_http",
        "https://mcp.example/mcp",
        {"Authorization": "Bearer t"},
    )


def test_bare_array_and_single_object() -> None:
    assert [s.name for s in manifest_parse([{"name": "a", "command": "x"}, {"name": "b", "command": "y"}])] == [
        "a",
        "b",
    ]
    assert [s.command for s in manifest_parse({"name": "solo", "command": "run-me"})] == ["run-me"]


def test_mcp_servers_shape_of_claude_desktop_and_claude_code() -> None:
    servers = manifest_parse(
        {
            "mcpServers": {
                "github": {
                    "command": "docker",
                    "args": ["run", "-i", "ghcr.io/github/github-mcp-server"],
                    "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "${GITHUB_TOKEN}"},
                },
                "Sentry Cloud": {"type": "http", "url": "https://mcp.sentry.dev/mcp"},
                "legacy": {"type": "sse", "url": "https://example.com/sse", "headers": {"X-Key": "k"}},
            }
        }
    )
    by_name = {s.name: s for s in servers}
    assert set(by_name) == {"github", "sentry-cloud", "legacy"}
    assert all(s.format == FORMAT_MCP_SERVERS for s in servers)
    assert by_name["github"].transport == "stdio"
    assert by_name["sentry-cloud"].transport == "streamable_http"
    assert by_name["legacy"].transport == "sse"
    assert dict(by_name["legacy"].headers) == {"X-Key": "k"}
    # Placeholders are kept as written and reported; renamed servers too.
    assert by_name["github"].env["GITHUB_PERSONAL_ACCESS_TOKEN"] == "${GITHUB_TOKEN}"
    assert any("${GITHUB_TOKEN}" in w for w in by_name["github"].warnings)
    assert any("'sentry-cloud'" in w for w in by_name["sentry-cloud"].warnings)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"servers": {"a": 1}}, '"servers" must be a list'),
        ({"mcpServers": []}, '"mcpServers" must be an object'),
        ({"something": 1}, 'expected {"servers": [...]}'),
        ([{"command": "x"}], 'servers[0]: a server needs a "name"'),
        ([{"name": "a"}], 'a stdio server needs a "command"'),
        ([{"name": "a", "transport": "http"}], 'needs a "url"'),
        ([{"name": "a", "transport": "carrier-pigeon", "command": "x"}], "unknown transport 'carrier-pigeon'"),
        ([{"name": "a", "command": "x", "args": "--flag"}], "servers[0] (a).args: expected a list of strings"),
        ([{"name": "a", "command": "x", "env": {"K": {"nested": 1}}}], "servers[0] (a).env.K: expected a string"),
        ([{"name": "a", "url": "ftp://x"}], "expected an http:// or https:// URL"),
        ([{"name": "a", "command": "x"}, {"name": "A", "command": "y"}], "the server name 'a' appears twice"),
        ({"mcpServers": {"!!!": {"command": "x"}}}, "has no letters or digits"),
    ],
)
def test_malformed_manifests_name_the_entry(data: object, message: str) -> None:
    with pytest.raises(ManifestError) as caught:
        manifest_parse(data, label="team.json")
    assert str(caught.value).startswith("team.json")
    assert message in str(caught.value)


def test_invalid_json_gives_line_and_column(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"m.json: not valid JSON: line 2 column 1"):
        manifest_loads('{"servers": [\n', label="m.json")
    path = tmp_path / "broken.json"
    path.write_text("{nope", encoding="utf-8")
    with pytest.raises(ManifestError, match=r"broken\.json: not valid JSON"):
        manifest_read(path)
    with pytest.raises(ManifestError, match="cannot be read"):
        manifest_read(tmp_path / "missing.json")


def test_manifest_files_lists_the_file_then_each_directory(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    for path in (one / "b.json", one / "a.json", two / "c.json", one / "notes.txt"):
        path.write_text(json.dumps([]), encoding="utf-8")
    main = tmp_path / "main.json"
    found = manifest_files(manifest=str(main), directories=[str(one), str(two), str(tmp_path / "absent")])
    assert found == [main, one / "a.json", one / "b.json", two / "c.json"]
    assert manifest_files(manifest=str(one / "a.json"), directories=[str(one)]) == [one / "a.json", one / "b.json"]


def test_slug_name() -> None:
    assert slug_name("  My Server  ") == "my-server"
    assert slug_name("a" * 60) == "a" * 40
