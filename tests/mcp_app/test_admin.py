"""The McpServer admin: write-only secrets, filters, and the test / restart / import actions."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.contrib.messages import get_messages
from django.db import connection
from django.test import override_settings
from django.urls import reverse

from mcp_app.client import mcp_manager
from mcp_app.models import McpServer, McpServerSource

SECRET = "sk-live-0123456789abcdef"
HEADER_SECRET = "Bearer hdr-9876543210"


def _form(server: McpServer, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": server.name,
        "transport": server.transport,
        "command": server.command,
        "args": json.dumps(server.args),
        "env": "",
        "url": server.url,
        "headers": "",
        "enabled": "on",
        "timeout_seconds": server.timeout_seconds,
        "sandbox": server.sandbox,
        "docker_image": "",
        "tool_allow": "[]",
        "tool_deny": "[]",
    }
    data.update(changes)
    return data


def test_secrets_are_encrypted_at_rest(make_server: Callable[..., Any]) -> None:
    server = make_server(env={"API_KEY": SECRET}, headers={"Authorization": HEADER_SECRET})
    with connection.cursor() as cursor:
        cursor.execute("SELECT env, headers FROM mcp_app_mcpserver WHERE id = %s", [server.pk])
        env, headers = cursor.fetchone()
    assert env.startswith("enc1:") and SECRET not in env
    assert headers.startswith("enc1:") and "hdr-9876543210" not in headers
    assert McpServer.objects.get(pk=server.pk).env == {"API_KEY": SECRET}
    assert SECRET not in repr(McpServer.objects.get(pk=server.pk).env.keys())


def test_change_form_and_list_never_show_secrets(admin_client: Any, make_server: Callable[..., Any]) -> None:
    server = make_server(env={"API_KEY": SECRET}, headers={"Authorization": HEADER_SECRET})
    page = admin_client.get(reverse("admin:mcp_app_mcpserver_change", args=[server.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert SECRET not in body and "hdr-9876543210" not in body
    assert "Stored: API_KEY." in body and "Stored: Authorization." in body
    listing = admin_client.get(reverse("admin:mcp_app_mcpserver_changelist"), {"transport__exact": "stdio"})
    text = listing.content.decode()
    assert "env: API_KEY" in text and SECRET not in text


def test_saving_without_secrets_keeps_them_and_new_ones_replace_them(
    admin_client: Any, make_server: Callable[..., Any]
) -> None:
    server = make_server(env={"API_KEY": SECRET}, source=McpServerSource.MANIFEST)
    url = reverse("admin:mcp_app_mcpserver_change", args=[server.pk])
    response = admin_client.post(url, _form(server, timeout_seconds=5))
    assert response.status_code == 302, response.content.decode()[:2000]
    server.refresh_from_db()
    assert server.env == {"API_KEY": SECRET} and server.timeout_seconds == 5
    assert server.source == McpServerSource.ADMIN  # edited by hand: imports leave it alone now
    admin_client.post(url, _form(server, env='{"OTHER": "v"}'))
    server.refresh_from_db()
    assert server.env == {"OTHER": "v"}
    bad = admin_client.post(url, _form(server, env="[1, 2]"))
    assert bad.status_code == 200 and b"Expected a JSON object" in bad.content


def test_stdio_needs_a_command(admin_client: Any, db: Any) -> None:
    response = admin_client.post(
        reverse("admin:mcp_app_mcpserver_add"),
        _form(McpServer(name="x", transport="stdio", command="", args=[], timeout_seconds=30, sandbox="auto")),
    )
    assert response.status_code == 200 and b"A stdio server needs a command." in response.content


def _action(admin_client: Any, action: str, *servers: McpServer) -> list[str]:
    response = admin_client.post(
        reverse("admin:mcp_app_mcpserver_changelist"),
        {"action": action, "_selected_action": [server.pk for server in servers], "index": 0},
        follow=True,
    )
    assert response.status_code == 200
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_test_connection_and_restart_actions(admin_client: Any, make_server: Callable[..., Any]) -> None:
    good = make_server(name="good")
    broken = make_server(name="broken", args=["-c", "import sys; sys.stderr.write('no token configured'); sys.exit(2)"])
    messages = _action(admin_client, "test_connection", good, broken)
    assert any(m.startswith("good: OK, 9 tools: echo, add") for m in messages), messages
    assert any(
        m.startswith("broken: FAILED: MCP server broken could not be started") and "no token configured" in m
        for m in messages
    ), messages
    assert any(server_id == good.pk and alive for server_id, _, alive in mcp_manager().sessions())
    assert _action(admin_client, "restart", good) == ["Restarted: good."]
    assert not any(server_id == good.pk for server_id, _, _ in mcp_manager().sessions())


def test_import_from_manifests_action_needs_no_selection(admin_client: Any, tmp_path: Path, db: Any) -> None:
    (tmp_path / "team.json").write_text(
        json.dumps({"mcpServers": {"docs": {"type": "http", "url": "https://docs.example/mcp"}}}), encoding="utf-8"
    )
    with override_settings(LYNKR_MCP_SERVER_MANIFEST="", LYNKR_MCP_MANIFEST_DIRS=[str(tmp_path)]):
        messages = _action(admin_client, "import_from_manifests")
    assert messages == [f"{tmp_path / 'team.json'}: created 1, updated 0, unchanged 0; created: docs"]
    assert McpServer.objects.get(name="docs").source == McpServerSource.MCP_SERVERS
    with override_settings(LYNKR_MCP_SERVER_MANIFEST="", LYNKR_MCP_MANIFEST_DIRS=[str(tmp_path / "none")]):
        assert _action(admin_client, "import_from_manifests") == [f"No manifest found (looked in {tmp_path / 'none'})."]
