from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from mcp_app import config
from mcp_app.models import McpServer, McpServerSource, McpTransport

_WRITE_ONLY_HELP = (
    "Write-only: a JSON object of names to values, stored encrypted and never shown again. Leave empty to keep "
    "the stored values; {} removes them."
)


def _names(values: dict[str, str]) -> str:
    return ", ".join(sorted(values)) or "none"


class McpServerForm(forms.ModelForm):  # type: ignore[type-arg]
    env = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), help_text=_WRITE_ONLY_HELP)
    headers = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), help_text=_WRITE_ONLY_HELP)
    url = forms.URLField(
        required=False, max_length=500, assume_scheme="https", help_text="Streamable HTTP / SSE: the endpoint URL."
    )

    class Meta:
        model = McpServer
        fields = "__all__"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The stored values never reach the page: only their names, in the help text.
        for field in ("env", "headers"):
            self.initial[field] = ""
            stored = getattr(self.instance, field) if self.instance.pk else {}
            self.fields[field].help_text = f"{_WRITE_ONLY_HELP} Stored: {_names(stored or {})}."

    def _secret(self, field: str) -> dict[str, str]:
        raw = (self.cleaned_data.get(field) or "").strip()
        if not raw:
            return dict(getattr(self.instance, field) or {}) if self.instance.pk else {}
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from None
        if not isinstance(value, dict) or not all(isinstance(item, str | int | float) for item in value.values()):
            raise forms.ValidationError('Expected a JSON object of names to string values, e.g. {"TOKEN": "..."}.')
        return {str(key): str(item) for key, item in value.items()}

    def clean_env(self) -> dict[str, str]:
        return self._secret("env")

    def clean_headers(self) -> dict[str, str]:
        return self._secret("headers")

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        transport = data.get("transport")
        if transport == McpTransport.STDIO and not data.get("command"):
            self.add_error("command", "A stdio server needs a command.")
        if transport in (McpTransport.STREAMABLE_HTTP, McpTransport.SSE) and not data.get("url"):
            self.add_error("url", "An HTTP server needs a URL.")
        for field in ("args", "tool_allow", "tool_deny"):
            value = data.get(field)
            if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
                self.add_error(field, "Expected a JSON list of strings.")
        return data


@admin.register(McpServer)
class McpServerAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = McpServerForm
    list_display = ("name", "transport", "target", "enabled", "sandbox", "access", "secrets", "source")
    list_filter = ("transport", "enabled", "sandbox", "source")
    search_fields = ("name", "command", "url")
    filter_horizontal = ("allowed_users", "allowed_groups")
    readonly_fields = ("source", "source_detail", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "transport", "enabled", "timeout_seconds")}),
        ("stdio", {"fields": ("command", "args", "env")}),
        ("HTTP", {"fields": ("url", "headers")}),
        ("Sandbox (stdio)", {"fields": ("sandbox", "sandbox_network", "docker_image")}),
        ("Who may use it (both empty = every user)", {"fields": ("allowed_users", "allowed_groups")}),
        ("Tools", {"fields": ("tool_allow", "tool_deny")}),
        ("Origin", {"fields": ("source", "source_detail", "created_at", "updated_at")}),
    )
    actions = ("test_connection", "restart", "import_from_manifests")

    @admin.display(description="command / URL")
    def target(self, obj: McpServer) -> str:
        text = " ".join([obj.command, *map(str, obj.args or ())]) if obj.transport == McpTransport.STDIO else obj.url
        return text if len(text) <= 80 else text[:79] + "…"

    @admin.display(description="may use")
    def access(self, obj: McpServer) -> str:
        users, groups = obj.allowed_users.count(), obj.allowed_groups.count()
        return f"{users} user(s), {groups} group(s)" if users or groups else "everyone"

    @admin.display(description="secrets (names)")
    def secrets(self, obj: McpServer) -> str:
        parts = [
            f"{label}: {_names(values)}" for label, values in (("env", obj.env), ("headers", obj.headers)) if values
        ]
        return "; ".join(parts) or "—"

    def save_model(self, request: HttpRequest, obj: McpServer, form: forms.ModelForm, change: bool) -> None:  # type: ignore[type-arg]
        # Edited by hand: a later manifest import must not undo it.
        obj.source = McpServerSource.ADMIN
        super().save_model(request, obj, form, change)

    @admin.action(description="Test connection (initialize and list the tools)")
    def test_connection(self, request: HttpRequest, queryset: QuerySet[McpServer]) -> None:
        from mcp_app.services import mcp_server_probe

        for server in queryset:
            result = mcp_server_probe(server_id=server.pk)
            if result.ok:
                shown = ", ".join(result.tools[:20]) + (" …" if len(result.tools) > 20 else "")
                self.message_user(request, f"{server.name}: OK, {result.message}: {shown}", messages.SUCCESS)
            else:
                detail = f" — stderr: {result.detail[-500:]}" if result.detail else ""
                self.message_user(request, f"{server.name}: FAILED: {result.message}{detail}", messages.ERROR)

    @admin.action(description="Restart (close its sessions; the next call starts it)")
    def restart(self, request: HttpRequest, queryset: QuerySet[McpServer]) -> None:
        from mcp_app.services import mcp_server_restart

        names = []
        for server in queryset:
            mcp_server_restart(server_id=server.pk)
            names.append(server.name)
        self.message_user(request, f"Restarted: {', '.join(names)}.", messages.SUCCESS)

    @admin.action(description="Import from manifests (MCP_SERVER_MANIFEST, MCP_MANIFEST_DIRS)", permissions=("add",))
    def import_from_manifests(self, request: HttpRequest, queryset: QuerySet[McpServer]) -> None:
        from mcp_app.services import mcp_server_import_from_settings

        reports = mcp_server_import_from_settings()
        if not reports:
            where = ", ".join(place for place in [config.manifest_file(), *config.manifest_dirs()] if place)
            self.message_user(request, f"No manifest found (looked in {where}).", messages.WARNING)
        for report in reports:
            level = messages.SUCCESS if report.ok else messages.ERROR
            self.message_user(request, "; ".join(line.strip() for line in report.lines()), level)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        # Importing needs no selection, but Django refuses an action without one: run it here in that case.
        if (
            request.method == "POST"
            and request.POST.get("action") == "import_from_manifests"
            and not request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
            and self.has_add_permission(request)
        ):
            self.import_from_manifests(request, self.get_queryset(request))
            return HttpResponseRedirect(request.get_full_path())
        return super().changelist_view(request, extra_context)
