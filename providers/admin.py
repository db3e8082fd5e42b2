from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from providers.models import ModelMapping, Provider, ProviderSource, RouteTier, RoutingRule, TierTarget


def mask(secret: str) -> str:
    if not secret:
        return "—"
    return f"{secret[:4]}…{secret[-2:]}" if len(secret) > 10 else "••••"


class ProviderForm(forms.ModelForm):  # type: ignore[type-arg]
    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep the stored credential.",
    )

    class Meta:
        model = Provider
        fields = "__all__"

    def clean_api_key(self) -> str:
        value: str = self.cleaned_data.get("api_key") or ""
        if not value and self.instance.pk:
            return str(self.instance.api_key)
        return value


class ModelMappingInline(admin.TabularInline):  # type: ignore[type-arg]
    model = ModelMapping
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

    @admin.display(description="fallback chain")
    def chain(self, obj: RouteTier) -> str:
        return " → ".join(
            f"{t.provider.name}:{t.upstream_model or '*'}" for t in obj.targets.select_related("provider")
        )


@admin.register(ModelMapping)
class ModelMappingAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("pattern", "match_type", "provider", "upstream_model", "scope", "priority", "enabled")
    list_filter = ("match_type", "enabled", "provider")
    search_fields = ("pattern", "upstream_model")
    autocomplete_fields = ()

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
