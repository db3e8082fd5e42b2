from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from gateway.models import ApiKey, Budget, PriceEntry, RateLimit, Session, Turn, UsageDaily, UsageRecord
from gateway.services import apikey_create


class ApiKeyCreateForm(forms.ModelForm):  # type: ignore[type-arg]
    expires_days = forms.IntegerField(required=False, min_value=1, help_text="Days until expiry; empty = never.")

    class Meta:
        model = ApiKey
        fields = ("user", "name")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("prefix", "name", "user", "created_at", "last_used_at", "expires_at", "status")
    list_filter = ("revoked_at", "expires_at")
    search_fields = ("prefix", "name", "user__username")
    readonly_fields = ("prefix", "created_at", "last_used_at")
    actions = ("revoke",)

    @admin.display(description="status")
    def status(self, obj: ApiKey) -> str:
        if obj.revoked_at:
            return "revoked"
        if obj.expires_at and obj.expires_at <= timezone.now():
            return "expired"
        return "active"

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = ApiKeyCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("user", "name", "expires_days")
        return ("user", "name", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        return ("user", "prefix", "created_at", "last_used_at")

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        issued = apikey_create(
            user=form.cleaned_data["user"],
            name=form.cleaned_data.get("name") or "",
            expires_days=form.cleaned_data.get("expires_days"),
        )
        created = ApiKey.objects.get(prefix=issued.prefix)
        obj.pk = created.pk
        obj.prefix = created.prefix
        obj.key_hash = created.key_hash
        obj.created_at = created.created_at
        # Shown once: the secret is not stored anywhere.
        base_url = settings.LYNKR_PUBLIC_URL.rstrip("/")
        if settings.LYNKR_BASE_PATH:
            base_url += "/" + settings.LYNKR_BASE_PATH.rstrip("/")
        self.message_user(
            request,
            format_html(
                "New key for {}: <code class='lynkr-secret'>{}</code> — copy it now, it will not be shown again."
                "<br>For Claude Code: <code>export ANTHROPIC_BASE_URL={} ANTHROPIC_API_KEY={}</code>",
                issued.username,
                issued.secret,
                base_url,
                issued.secret,
            ),
            messages.SUCCESS,
        )

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count} key(s).", messages.SUCCESS)


@admin.register(PriceEntry)
class PriceEntryAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("model_pattern", "provider", "input_per_mtok", "output_per_mtok", "cache_read_per_mtok",
                    "cache_write_per_mtok", "priority", "note")  # fmt: skip
    list_filter = ("provider",)
    search_fields = ("model_pattern", "note")
    list_editable = ("input_per_mtok", "output_per_mtok", "priority")


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Usage is a ledger: shown, filtered, never edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "user", "api_key", "client_model", "provider", "upstream_model",
                    "route_rule", "input_tokens", "output_tokens", "cost_usd", "latency_ms", "status",
                    "cache_hit")  # fmt: skip
    list_filter = ("kind", "status", "cache_hit", "provider", "created_at")
    search_fields = ("request_id", "user__username", "api_key__prefix", "client_model", "upstream_model")
    date_hierarchy = "created_at"


@admin.register(UsageDaily)
class UsageDailyAdmin(ReadOnlyAdmin):
    list_display = ("day", "user", "api_key", "provider", "client_model", "requests", "errors", "input_tokens",
                    "output_tokens", "cost_usd", "unpriced_requests")  # fmt: skip
    list_filter = ("day", "provider")
    date_hierarchy = "day"


class TurnInline(admin.StackedInline):  # type: ignore[type-arg]
    model = Turn
    extra = 0
    can_delete = False
    fields = ("created_at", "request_id", "conversation")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="new messages and answer")
    def conversation(self, obj: Turn) -> str:
        lines = []
        for message in obj.new_messages or []:
            lines.append(format_html("<b>{}</b>: {}", message.get("role", "?"), _text(message.get("content"))[:2000]))
        if obj.response:
            lines.append(format_html("<b>assistant</b>: {}", _text(obj.response.get("content"))[:2000]))
        return format_html("<br>".join(["{}"] * len(lines)), *lines) if lines else "—"


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        kind = block.get("type")
        if kind == "text":
            parts.append(block.get("text", ""))
        elif kind == "tool_use":
            parts.append(f"[tool_use {block.get('name')}]")
        elif kind == "tool_result":
            parts.append("[tool_result]")
        elif kind:
            parts.append(f"[{kind}]")
    return " ".join(parts)


@admin.register(Session)
class SessionAdmin(ReadOnlyAdmin):
    list_display = ("external_id", "user", "api_key", "started_at", "last_seen_at", "requests", "cost_usd")
    list_filter = ("last_seen_at",)
    search_fields = ("external_id", "user__username")
    inlines = (TurnInline,)


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("name", "scope", "period", "limit_usd", "limit_tokens", "soft_threshold", "enabled", "spent")
    list_filter = ("period", "enabled")
    search_fields = ("name", "user__username", "group__name", "api_key__prefix")

    @admin.display(description="for")
    def scope(self, obj: Budget) -> str:
        return f"key {obj.api_key}" if obj.api_key_id else f"user {obj.user}" if obj.user_id else f"team {obj.group}"

    @admin.display(description="spent this period")
    def spent(self, obj: Budget) -> str:
        from datetime import UTC, datetime

        from gateway.budgets import period_bounds

        start, _ = period_bounds(obj.period, datetime.now(UTC))
        row = obj.usage.filter(period_start=start).first()
        if row is None:
            return "—"
        return f"${row.spent_usd:.4f} / {row.spent_tokens} tokens (reserved ${row.reserved_usd:.4f})"


@admin.register(RateLimit)
class RateLimitAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("__str__", "requests_per_minute", "input_tokens_per_minute", "output_tokens_per_minute")
    search_fields = ("user__username", "api_key__prefix")
