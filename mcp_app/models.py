"""MCP servers the gateway connects to on behalf of its users (admin-managed, or imported from manifests)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models

from mcp_app.fields import EncryptedJSONField


class McpTransport(models.TextChoices):
    STDIO = "stdio", "stdio (a local command)"
    STREAMABLE_HTTP = "streamable_http", "Streamable HTTP (a URL)"
    SSE = "sse", "HTTP with SSE (legacy, a URL)"


class McpSandbox(models.TextChoices):
    AUTO = "auto", "auto: bubblewrap when MCP_SANDBOX_ENABLED and bwrap is installed, else none"
    NONE = "none", "none"
    BUBBLEWRAP = "bubblewrap", "bubblewrap"
    DOCKER = "docker", "docker"


class McpServerSource(models.TextChoices):
    ADMIN = "admin", "admin (created or edited in admin: imports leave it alone)"
    MANIFEST = "manifest", "Lynkr manifest"
    MCP_SERVERS = "mcpservers", "mcpServers JSON (Claude Desktop / Claude Code)"


class McpServer(models.Model):
    name = models.SlugField(
        max_length=40, unique=True, help_text="Tools are exposed as mcp_<name>_<tool>; keep it short."
    )
    transport = models.CharField(max_length=20, choices=McpTransport.choices, default=McpTransport.STDIO)
    command = models.CharField(max_length=500, blank=True, help_text="stdio: the program (an argv, no shell).")
    args = models.JSONField(default=list, blank=True, help_text="stdio: the program's arguments, a JSON list.")
    env = EncryptedJSONField(
        default=dict, blank=True, help_text="stdio: extra environment (stored encrypted, never shown again)."
    )
    url = models.URLField(max_length=500, blank=True, help_text="Streamable HTTP / SSE: the endpoint URL.")
    headers = EncryptedJSONField(
        default=dict, blank=True, help_text="HTTP headers, e.g. Authorization (stored encrypted, never shown again)."
    )
    enabled = models.BooleanField(default=True)
    timeout_seconds = models.PositiveIntegerField(
        default=30,
        help_text="Longest wait for one answer of the server (tools/list, tools/call); starting it may take up to "
        "60 s or this, whichever is longer.",
    )
    sandbox = models.CharField(max_length=16, choices=McpSandbox.choices, default=McpSandbox.AUTO)
    sandbox_network = models.BooleanField(default=False, help_text="Let a sandboxed server use the network.")
    docker_image = models.CharField(
        max_length=300, blank=True, help_text="Docker runtime: the image (empty = MCP_SANDBOX_IMAGE)."
    )
    allowed_users = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="mcp_servers",
        help_text="With allowed groups empty too, every user may use the server.",
    )
    allowed_groups = models.ManyToManyField(Group, blank=True, related_name="mcp_servers")
    tool_allow = models.JSONField(default=list, blank=True, help_text="Tool name globs offered; empty = all.")
    tool_deny = models.JSONField(default=list, blank=True, help_text="Tool name globs never offered.")
    source = models.CharField(max_length=16, choices=McpServerSource.choices, default=McpServerSource.ADMIN)
    source_detail = models.CharField(max_length=500, blank=True, help_text="The file it was imported from.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name",)
        verbose_name = "MCP server"

    def __str__(self) -> str:
        return self.name
