"""Gateway admin: keys (issued with the secret shown once), prices, budgets and rate limits (also inline on users
and teams), and the usage ledger and sessions, read-only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from weakref import WeakKeyDictionary

from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html, format_html_join
from django.views.decorators.debug import sensitive_variables

from gateway.admin_forms import (
    ApiKeyCreateForm,
    BudgetForm,
    KeyStatusFilter,
    PriceEntryForm,
    RateLimitForm,
    claude_code_lines,
    key_status,
)
from gateway.models import ApiKey, Budget, PriceEntry, RateLimit, Session, Turn, UsageDaily, UsageRecord
from gateway.services import IssuedKey, apikey_create

admin.site.site_header = "Lynkr"
admin.site.site_title = "Lynkr admin"
admin.site.index_title = "Gateway administration"


def _gateway_caches_clear() -> None:
    """This process's key, budget, price and rate-limit caches, after the admin changed one of them (other
    processes pick the change up within LYNKR_KEY_CACHE_TTL)."""
    from gateway.auth import key_cache_clear
    from gateway.budgets import budget_cache_clear
    from gateway.metering_config import metering_cache_clear

    key_cache_clear()
    budget_cache_clear()
    metering_cache_clear()


class ClearsGatewayCaches(admin.ModelAdmin):  # type: ignore[type-arg]
    """Once the change is committed: clearing earlier lets a concurrent request cache the old rows again."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        transaction.on_commit(_gateway_caches_clear)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        super().delete_model(request, obj)
        transaction.on_commit(_gateway_caches_clear)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        super().delete_queryset(request, queryset)
        transaction.on_commit(_gateway_caches_clear)


# The secret between save_model and response_add of the same request, in memory only: it dies with the request.
_issued: WeakKeyDictionary[HttpRequest, IssuedKey] = WeakKeyDictionary()


@admin.register(ApiKey)
class ApiKeyAdmin(ClearsGatewayCaches):
    list_display = ("prefix", "name", "user", "created_at", "last_used_at", "expires_at", "status")
    list_filter = (KeyStatusFilter, "created_at", "expires_at")
    list_select_related = ("user",)
    search_fields = ("prefix", "name", "user__username")
    date_hierarchy = "created_at"
    actions = ("revoke",)

    @admin.display(description="status")
    def status(self, obj: ApiKey) -> str:
        return key_status(obj)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = ApiKeyCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("user", "name", "expires_days")
        return ("user", "name", "prefix", "status", "created_at", "last_used_at", "expires_at", "revoked_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        return ("user", "prefix", "status", "created_at", "last_used_at")

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None) -> Any:
        # Saving always leads to the page that shows the secret: no "save and add another / continue".
        context = {"show_save_and_add_another": False, "show_save_and_continue": False, **(extra_context or {})}
        return super().add_view(request, form_url, context)

    @sensitive_variables("issued")
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
        obj.pk, obj.prefix, obj.key_hash = created.pk, created.prefix, created.key_hash
        obj.created_at, obj.expires_at = created.created_at, created.expires_at
        _issued[request] = issued

    @sensitive_variables("issued")
    def response_add(self, request: HttpRequest, obj: ApiKey, post_url_continue: str | None = None) -> HttpResponse:
        """The secret, once, in the response to the POST that created it: no redirect, so it is never put in the
        session or a message to survive until the next page."""
        issued = _issued.pop(request, None)
        if issued is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "API key issued",
            "subtitle": None,
            "key": obj,
            "username": issued.username,
            "secret": issued.secret,
            "claude_code_lines": claude_code_lines(secret=issued.secret),
        }
        response = TemplateResponse(request, "admin/gateway/apikey/issued.html", context)
        add_never_cache_headers(response)  # nor kept by the browser's cache or back button
        return response

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        transaction.on_commit(_gateway_caches_clear)
        self.message_user(request, f"Revoked {count} key(s); they are refused from now on.", messages.SUCCESS)


@admin.register(PriceEntry)
class PriceEntryAdmin(ClearsGatewayCaches):
    form = PriceEntryForm
    list_display = ("model_pattern", "provider", "input_per_mtok", "output_per_mtok", "cache_read_per_mtok",
                    "cache_write_per_mtok", "priority", "note")  # fmt: skip
    list_filter = ("provider",)
    list_select_related = ("provider",)
    search_fields = ("model_pattern", "note")
    list_editable = ("input_per_mtok", "output_per_mtok", "priority")


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Shown, filtered, never edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class LedgerAdmin(ReadOnlyAdmin):
    """Usage is a ledger: not deleted by hand either (LYNKR_USAGE_RETENTION_DAYS purges it)."""

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(UsageRecord)
class UsageRecordAdmin(LedgerAdmin):
    list_display = ("created_at", "request_id", "kind", "user", "api_key", "client_model", "provider",
                    "upstream_model", "route_rule", "input_tokens", "output_tokens", "cost_usd", "latency_ms",
                    "status", "cache_hit")  # fmt: skip
    list_filter = ("kind", "status", "cache_hit", "stream", "provider", "error_type", "created_at")
    list_select_related = ("user", "api_key")
    search_fields = ("request_id", "user__username", "api_key__prefix", "client_model", "upstream_model")
    date_hierarchy = "created_at"


@admin.register(UsageDaily)
class UsageDailyAdmin(LedgerAdmin):
    list_display = ("day", "user", "api_key", "provider", "client_model", "requests", "errors", "input_tokens",
                    "output_tokens", "cost_usd", "unpriced_requests")  # fmt: skip
    list_filter = ("day", "provider")
    list_select_related = ("user", "api_key")
    search_fields = ("user__username", "api_key__prefix", "client_model")
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
    """Read-only; deletable, because a transcript holds prompts someone may ask to have removed."""

    list_display = ("external_id", "user", "api_key", "started_at", "last_seen_at", "requests", "cost_usd")
    list_filter = ("last_seen_at",)
    list_select_related = ("user", "api_key")
    search_fields = ("external_id", "user__username")
    date_hierarchy = "last_seen_at"
    inlines = (TurnInline,)


def _budget_spent(obj: Budget) -> str:
    from gateway.budgets import period_bounds

    if obj.pk is None:
        return "—"
    start, _ = period_bounds(obj.period, datetime.now(UTC))
    row = obj.usage.filter(period_start=start).first()
    if row is None:
        return "—"
    return f"${row.spent_usd:.4f} / {row.spent_tokens} tokens (reserved ${row.reserved_usd:.4f})"


@admin.register(Budget)
class BudgetAdmin(ClearsGatewayCaches):
    form = BudgetForm
    autocomplete_fields = ("user", "group", "api_key")  # searchable: a select of every key does not scale
    list_display = ("name", "scope", "period", "limit_usd", "limit_tokens", "soft_threshold", "enabled", "spent")
    list_filter = ("period", "enabled")
    list_select_related = ("user", "group", "api_key")
    search_fields = ("name", "user__username", "group__name", "api_key__prefix")
    readonly_fields = ("spent", "recent_periods")
    fieldsets = (
        (None, {"fields": ("name", "enabled")}),
        ("Who it limits (exactly one)", {"fields": ("user", "group", "api_key")}),
        ("Limits (one or both)", {"fields": ("period", "limit_usd", "limit_tokens", "soft_threshold")}),
        ("Spend", {"fields": ("spent", "recent_periods")}),
    )

    @admin.display(description="for")
    def scope(self, obj: Budget) -> str:
        return f"key {obj.api_key}" if obj.api_key_id else f"user {obj.user}" if obj.user_id else f"team {obj.group}"

    @admin.display(description="spent this period")
    def spent(self, obj: Budget) -> str:
        return _budget_spent(obj)

    @admin.display(description="recent periods")
    def recent_periods(self, obj: Budget) -> str:
        rows = list(obj.usage.order_by("-period_start")[:12]) if obj.pk else []
        if not rows:
            return "—"
        return format_html(
            "<table><tr><th>period from</th><th>USD</th><th>tokens</th></tr>{}</table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>${}</td><td>{}</td></tr>",
                ((r.period_start.date(), f"{r.spent_usd:.4f}", r.spent_tokens) for r in rows),
            ),
        )


@admin.register(RateLimit)
class RateLimitAdmin(ClearsGatewayCaches):
    form = RateLimitForm
    autocomplete_fields = ("user", "api_key")
    list_display = ("__str__", "user", "api_key", "requests_per_minute", "input_tokens_per_minute",
                    "output_tokens_per_minute")  # fmt: skip
    list_select_related = ("user", "api_key")
    search_fields = ("user__username", "api_key__prefix")


# Users and teams (Django groups) with their budgets, limits and keys on their own page.


class BudgetInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Budget
    form = BudgetForm
    extra = 0
    fields = ("name", "period", "limit_usd", "limit_tokens", "soft_threshold", "enabled", "spent")
    readonly_fields = ("spent",)
    show_change_link = True

    @admin.display(description="spent this period")
    def spent(self, obj: Budget) -> str:
        return _budget_spent(obj)


class UserRateLimitInline(admin.TabularInline):  # type: ignore[type-arg]
    model = RateLimit
    form = RateLimitForm
    extra = 0
    max_num = 1  # gateway.metering_config reads one row per user (the key's own row wins)
    fields = ("requests_per_minute", "input_tokens_per_minute", "output_tokens_per_minute")
    verbose_name = "rate limit (all of this user's keys)"

    def get_queryset(self, request: HttpRequest) -> QuerySet[RateLimit]:
        return super().get_queryset(request).filter(api_key__isnull=True)


class ApiKeyInline(admin.TabularInline):  # type: ignore[type-arg]
    """Read-only: keys are issued on their own page (the secret is shown there once) and revoked from there."""

    model = ApiKey
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ("prefix", "name", "created_at", "last_used_at", "expires_at", "status")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="status")
    def status(self, obj: ApiKey) -> str:
        return key_status(obj)


admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class UserAdmin(ClearsGatewayCaches, DjangoUserAdmin):  # type: ignore[type-arg]
    inlines = (ApiKeyInline, BudgetInline, UserRateLimitInline)
    list_display = ("username", "email", "first_name", "last_name", "is_staff", "is_active", "active_keys")
    readonly_fields = ("issue_key",)
    fieldsets = (*(DjangoUserAdmin.fieldsets or ()), ("Gateway", {"fields": ("issue_key",)}))

    def get_inlines(self, request: HttpRequest, obj: Any) -> Any:
        # Budgets and limits need the user to exist: they appear once it is saved.
        return self.inlines if obj is not None else ()

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        active = Q(api_keys__revoked_at__isnull=True) & (
            Q(api_keys__expires_at__isnull=True) | Q(api_keys__expires_at__gt=timezone.now())
        )
        rows: QuerySet[User] = super().get_queryset(request)
        return rows.annotate(active_key_count=Count("api_keys", filter=active))

    @admin.display(description="active keys", ordering="active_key_count")
    def active_keys(self, obj: Any) -> int:
        return int(getattr(obj, "active_key_count", 0))

    @admin.display(description="API key")
    def issue_key(self, obj: User) -> str:
        if obj.pk is None:
            return "—"
        url = reverse("admin:gateway_apikey_add") + f"?user={obj.pk}"
        return format_html('<a class="button" href="{}">Issue an API key for {}</a>', url, obj.get_username())


@admin.register(Group)
class TeamAdmin(ClearsGatewayCaches, DjangoGroupAdmin):
    inlines = (BudgetInline,)
    list_display = ("name", "members")

    def get_inlines(self, request: HttpRequest, obj: Any) -> Any:
        return self.inlines if obj is not None else ()

    def get_queryset(self, request: HttpRequest) -> QuerySet[Group]:
        rows: QuerySet[Group] = super().get_queryset(request)
        return rows.annotate(member_count=Count("user"))

    @admin.display(description="members", ordering="member_count")
    def members(self, obj: Any) -> int:
        return int(getattr(obj, "member_count", 0))
