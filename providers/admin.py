from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from providers.models import Provider, ProviderSource


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


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = ProviderForm
    list_display = ("name", "kind", "base_url", "enabled", "priority", "source_label", "credential")
    list_filter = ("kind", "enabled", "source")
    search_fields = ("name", "base_url", "model_override")
    readonly_fields = ("source", "created_at", "updated_at")

    @admin.display(description="source")
    def source_label(self, obj: Provider) -> str:
        return str(ProviderSource(obj.source).label)

    @admin.display(description="credential")
    def credential(self, obj: Provider) -> str:
        if obj.api_key_env:
            return f"${obj.api_key_env}"
        return mask(obj.api_key)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Providers from the environment are re-synced at every start: edit the environment instead.
        if obj is not None and obj.source == ProviderSource.ENV:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.source == ProviderSource.ENV:
            return False
        return super().has_delete_permission(request, obj)
