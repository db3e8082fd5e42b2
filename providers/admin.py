from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from asgiref.sync import async_to_sync
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from gateway.admin_forms import ExplainingModelForm, chosen_subjects, glob_problem, has_wildcard
from providers.models import (
    MatchType,
    ModelMapping,
    Provider,
    ProviderSource,
    RouteTier,
    RoutingRule,
    TierTarget,
    validate_http_url,
)


def mask(secret: str) -> str:
    if not secret:
        return "—"
    return f"{secret[:4]}…{secret[-2:]}" if len(secret) > 10 else "••••"


class ProviderForm(ExplainingModelForm):
    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep the stored credential (setting an environment variable below replaces it).",
    )

    class Meta:
        model = Provider
        fields = "__all__"

    def clean_api_key(self) -> str:
        value: str = self.cleaned_data.get("api_key") or ""
        if not value and self.instance.pk:
            return str(self.instance.api_key)
        return value

    def clean_base_url(self) -> str:
        value: str = (self.cleaned_data.get("base_url") or "").strip()
        try:
            validate_http_url(value)
        except ValidationError as exc:
            raise forms.ValidationError(
                f"{' '.join(exc.messages)} (http or https only; for Ollama e.g. http://localhost:11434)."
            ) from None
        if urlsplit(value).username or urlsplit(value).password:
            raise forms.ValidationError(
                "Remove the user:password@ part: put the credential in the API key field (stored encrypted), "
                "URLs are shown and logged."
            )
        return value

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        typed = (self.data.get(self.add_prefix("api_key")) or "").strip()
        if data.get("api_key_env"):
            if typed:
                self.add_error(
                    "api_key_env",
                    "Give the credential either here or in the API key field, not both: clear one of them.",
                )
            else:
                data["api_key"] = ""  # switching to an environment variable drops the stored credential
        return data


class ModelMappingForm(ExplainingModelForm):
    class Meta:
        model = ModelMapping
        fields = "__all__"

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        match_type, pattern = data.get("match_type"), data.get("pattern") or ""
        problem = None
        if match_type == MatchType.ANY and pattern:
            problem = "'any model' matches every model and ignores the pattern: clear it, or choose exact id or glob."
        elif match_type in (MatchType.EXACT, MatchType.GLOB) and not pattern:
            problem = "Give the client model id to match (e.g. claude-sonnet-5), or choose 'any model'."
        elif match_type == MatchType.EXACT and has_wildcard(pattern):
            problem = (
                f"'{pattern}' contains *, ? or [, which an exact id matches only literally: choose 'glob pattern', "
                "or remove them."
            )
        elif match_type in (MatchType.EXACT, MatchType.GLOB):
            problem = glob_problem(pattern)
            if problem is None and match_type == MatchType.GLOB and not has_wildcard(pattern):
                problem = (
                    f"'{pattern}' has no *, ? or [...], so it matches only itself: choose 'exact id', "
                    f"or add a wildcard (e.g. {pattern}*)."
                )
        if problem and not self.has_error("pattern"):
            self.add_error("pattern", problem)
        if len(chosen_subjects(self, ("api_key", "user", "group"))) > 1:
            self.add_error(
                None, "Scope a mapping to one API key, one user or one team (or none: everyone), not several."
            )
        return data


class RoutingRuleForm(ExplainingModelForm):
    class Meta:
        model = RoutingRule
        fields = "__all__"

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        for field in ("client_model", "header_value"):
            problem = glob_problem(data.get(field) or "")
            if problem:
                self.add_error(field, problem)
        return data


class ModelMappingInline(admin.TabularInline):  # type: ignore[type-arg]
    model = ModelMapping
    form = ModelMappingForm
    extra = 0
    fields = ("match_type", "pattern", "upstream_model", "context_window", "max_output_tokens", "priority", "enabled")


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = ProviderForm
    list_display = ("name", "kind", "base_url", "enabled", "priority", "source_label", "credential", "breaker")
    list_filter = ("kind", "enabled", "source", "supports_tools", "supports_images", "supports_thinking")
    search_fields = ("name", "base_url", "model_override")
    readonly_fields = ("source", "created_at", "updated_at")
    inlines = (ModelMappingInline,)
    actions = ("test_connection", "reset_breaker")

    @admin.display(description="source")
    def source_label(self, obj: Provider) -> str:
        return str(ProviderSource(obj.source).label)

    @admin.display(description="credential")
    def credential(self, obj: Provider) -> str:
        if obj.api_key_env:
            return f"${obj.api_key_env}"
        return mask(obj.api_key)

    @admin.display(description="circuit")
    def breaker(self, obj: Provider) -> str:
        from gateway.breakers import breaker_store

        state = async_to_sync(breaker_store().apply)(obj.pk, "check")
        return f"{state.state} ({state.failures} failures)" if state.failures else state.state

    @admin.action(description="Test connection (a real small request)")
    def test_connection(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        from gateway.probe import provider_probe
        from providers.selectors import provider_to_config

        for provider in queryset:
            model = provider.model_override or (provider.advertised_models or ["claude-sonnet-5"])[0]
            result = async_to_sync(provider_probe)(provider=provider_to_config(provider), model=model)
            level = messages.SUCCESS if result.ok else messages.ERROR
            verdict = "OK" if result.ok else "FAILED"
            self.message_user(
                request, f"{provider.name}: {verdict} in {result.latency_ms:.0f} ms — {result.message}", level
            )

    @admin.action(description="Reset circuit breaker")
    def reset_breaker(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        from gateway.breakers import breaker_store

        for provider in queryset:
            async_to_sync(breaker_store().reset)(provider.pk)
        self.message_user(request, f"Reset the circuit breaker of {queryset.count()} provider(s).", messages.SUCCESS)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Providers from the environment are re-synced at every start: edit the environment instead.
        if obj is not None and obj.source == ProviderSource.ENV:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.source == ProviderSource.ENV:
            return False
        return super().has_delete_permission(request, obj)


class TierTargetInline(admin.TabularInline):  # type: ignore[type-arg]
    model = TierTarget
    extra = 1
    fields = ("order", "provider", "upstream_model", "context_window", "max_output_tokens")
    verbose_name = "fallback chain entry (tried in order)"


@admin.register(RouteTier)
class RouteTierAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("name", "order", "long_context", "max_attempts", "chain", "source")
    list_filter = ("long_context", "source")
    search_fields = ("name", "description")
    inlines = (TierTargetInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet[RouteTier]:
        return super().get_queryset(request).prefetch_related("targets__provider")

    @admin.display(description="fallback chain")
    def chain(self, obj: RouteTier) -> str:
        return " → ".join(f"{t.provider.name}:{t.upstream_model or '*'}" for t in obj.targets.all())


@admin.register(ModelMapping)
class ModelMappingAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = ModelMappingForm
    autocomplete_fields = ("api_key", "user", "group")
    list_select_related = ("provider", "api_key", "user", "group")
    list_display = ("pattern", "match_type", "provider", "upstream_model", "scope", "priority", "enabled")
    list_filter = ("match_type", "enabled", "provider")
    search_fields = ("pattern", "upstream_model")

    @admin.display(description="scope")
    def scope(self, obj: ModelMapping) -> str:
        if obj.api_key_id:
            return f"key {obj.api_key}"
        if obj.user_id:
            return f"user {obj.user}"
        if obj.group_id:
            return f"team {obj.group}"
        return "everyone"


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = RoutingRuleForm
    autocomplete_fields = ("api_key", "user", "group")
    list_select_related = ("tier", "api_key", "user", "group")
    list_display = ("order", "name", "enabled", "conditions", "tier", "source")
    list_display_links = ("name",)
    list_filter = ("enabled", "tier", "source")
    search_fields = ("name",)
    ordering = ("order",)

    @admin.display(description="when")
    def conditions(self, obj: RoutingRule) -> str:
        parts = []
        if obj.min_tools is not None or obj.max_tools is not None:
            parts.append(f"tools {obj.min_tools or 0}..{'' if obj.max_tools is None else obj.max_tools}")
        for label, value in (("model", obj.client_model), ("header", obj.header_name)):
            if value:
                parts.append(
                    f"{label} {value}" + (f"={obj.header_value}" if label == "header" and obj.header_value else "")
                )
        for label, flag in (("background", obj.background), ("thinking", obj.thinking), ("images", obj.has_images)):
            if flag is not None:
                parts.append(label if flag else f"no {label}")
        if obj.min_input_tokens:
            parts.append(f"input ≥ {obj.min_input_tokens} tokens")
        for label, scoped in (("key", obj.api_key), ("user", obj.user), ("team", obj.group)):
            if scoped is not None:
                parts.append(f"{label} {scoped}")
        return ", ".join(parts) or "always"
