from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from gateway.models import ApiKey
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
