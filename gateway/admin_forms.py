"""Admin forms whose validation says what is wrong and what to do about it (and the key list's status filter and
the Claude Code lines shown when a key is issued).

The models keep their own ``clean()`` (the last line of defence); these forms check the same rules first, each
message attached to the field to change, and in the words of someone fixing it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from gateway.keys import claude_code_exports
from gateway.models import ApiKey, Budget, PriceEntry, RateLimit

MAX_KEY_DAYS = 3650
_WILDCARDS = frozenset("*?[")


class ExplainingModelForm(forms.ModelForm):  # type: ignore[type-arg]
    """Runs the model's validation only once the form's own checks pass.

    Without this a rule broken in the form is reported twice (once here, once, less precisely, by the model's
    ``clean()``), and a field that failed to parse reads as empty to the model, which then reports a problem the
    person did not make ("no limit" after a mistyped limit). Django's own UserCreationForm overrides the same hook.
    """

    def _post_clean(self) -> None:
        if self.errors:
            return
        super()._post_clean()  # type: ignore[misc]


def glob_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a usable fnmatch glob (matched with ``fnmatchcase``), or None when it is."""
    if pattern != pattern.strip() or any(c.isspace() for c in pattern):
        return "Remove the spaces: model ids never contain whitespace."
    depth = 0
    for char in pattern:
        if char == "[":
            depth += 1
        elif char == "]" and depth:
            depth -= 1
    if depth:
        # fnmatch silently treats an unclosed '[' as a literal, so 'claude-[' would match only itself.
        return "Close the '[' of the character class (e.g. claude-[0-9]*), or write a literal [ as [[]."
    return None


def has_wildcard(pattern: str) -> bool:
    return any(c in _WILDCARDS for c in pattern)


def chosen_subjects(form: forms.ModelForm, fields: tuple[str, ...]) -> list[str]:  # type: ignore[type-arg]
    """The subject fields that are set, from the form when it shows the field, else from the instance (an inline's
    parent is set on the instance and shown as a hidden field)."""
    chosen = []
    for field in fields:
        shown = field in form.fields
        value = form.cleaned_data.get(field) if shown else getattr(form.instance, f"{field}_id", None)
        if value is not None:
            chosen.append(field)
    return chosen


_SUBJECT_LABEL = {"user": "a user", "group": "a team", "api_key": "an API key"}


class BudgetForm(ExplainingModelForm):
    class Meta:
        model = Budget
        fields = "__all__"

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        subjects = chosen_subjects(self, ("user", "group", "api_key"))
        if not subjects:
            self.add_error(None, "Choose who this budget limits: a user, a team or an API key.")
        elif len(subjects) > 1:
            picked = ", ".join(_SUBJECT_LABEL[s] for s in subjects)
            self.add_error(
                None,
                f"A budget limits one subject, but {picked} are chosen: keep one and clear the others. "
                "To cap several, add one budget for each.",
            )
        limits_parsed = not self.has_error("limit_usd") and not self.has_error("limit_tokens")
        if limits_parsed and data.get("limit_usd") is None and data.get("limit_tokens") is None:
            self.add_error(
                "limit_usd",
                "Set a USD limit, a token limit, or both: a budget without a limit would never refuse anything.",
            )
        for field in ("limit_usd", "limit_tokens"):
            value = data.get(field)
            if value is not None and value < 0:
                self.add_error(
                    field, "A limit cannot be negative: use 0 to stop all spending, or untick 'enabled' to pause it."
                )
        threshold = data.get("soft_threshold")
        if threshold is not None and not Decimal(0) < threshold <= Decimal(1):
            self.add_error(
                "soft_threshold",
                "Use a fraction of the limit between 0 and 1: 0.8 warns once 80% of the budget is used.",
            )
        return data


class RateLimitForm(ExplainingModelForm):
    class Meta:
        model = RateLimit
        fields = "__all__"

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        subjects = chosen_subjects(self, ("user", "api_key"))
        if not subjects:
            self.add_error(None, "Choose what these limits apply to: a user (all their keys) or one API key.")
        elif len(subjects) > 1:
            self.add_error(
                None,
                "Rate limits apply to a user or to one API key, not both: clear one of them. "
                "For both, add one rate limit for the user and one for the key.",
            )
        limits = ("requests_per_minute", "input_tokens_per_minute", "output_tokens_per_minute")
        if not any(self.has_error(f) for f in limits) and all(data.get(f) is None for f in limits):
            self.add_error(
                "requests_per_minute",
                "Set at least one limit (requests, input tokens or output tokens per minute); "
                "an empty rate limit limits nothing, delete it instead.",
            )
        return data


class PriceEntryForm(ExplainingModelForm):
    class Meta:
        model = PriceEntry
        fields = "__all__"

    def clean_model_pattern(self) -> str:
        pattern: str = self.cleaned_data["model_pattern"]
        problem = glob_problem(pattern)
        if problem:
            raise forms.ValidationError(problem)
        return pattern

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        for field in ("input_per_mtok", "output_per_mtok", "cache_read_per_mtok", "cache_write_per_mtok"):
            value = data.get(field)
            if value is not None and value < 0:
                self.add_error(field, "A price cannot be negative: USD per million tokens, e.g. 3 or 0.25.")
        return data


class ApiKeyCreateForm(forms.ModelForm):  # type: ignore[type-arg]
    """Issuance: who, a label, and when it expires. The secret is generated server-side and shown once."""

    expires_days = forms.IntegerField(
        label="expires in (days)",
        required=False,
        min_value=1,
        max_value=MAX_KEY_DAYS,
        help_text="Empty: the key never expires (revoke it when it is no longer needed).",
        error_messages={
            "min_value": "Give a number of days of at least 1, or leave it empty for a key that does not expire.",
            "max_value": f"At most {MAX_KEY_DAYS} days; leave it empty for a key that does not expire.",
        },
    )

    class Meta:
        model = ApiKey
        fields = ("user", "name")
        help_texts = {"name": "Where the key is used, e.g. 'laptop' or 'ci': shown next to its prefix."}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        user_field = self.fields["user"]
        if isinstance(user_field, forms.ModelChoiceField):
            # An inactive user's key would be refused at once: not offered.
            user_field.queryset = get_user_model().objects.filter(is_active=True).order_by("username")
            user_field.help_text = "The key acts as this user: their budgets, rate limits and workspaces apply."


def claude_code_lines(*, secret: str) -> str:
    """The environment Claude Code needs to use the gateway with this key (the same lines ``lynkr serve`` prints
    at first start)."""
    base_url = settings.LYNKR_PUBLIC_URL.rstrip("/")
    if settings.LYNKR_BASE_PATH:
        base_url += "/" + settings.LYNKR_BASE_PATH.rstrip("/")
    return "\n".join(claude_code_exports(base_url=base_url, secret=secret))


class KeyStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "active"), ("expired", "expired"), ("revoked", "revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        now = timezone.now()
        if self.value() == "active":
            return queryset.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now), revoked_at__isnull=True)
        if self.value() == "expired":
            return queryset.filter(expires_at__lte=now, revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


def key_status(obj: ApiKey) -> str:
    if obj.revoked_at:
        return "revoked"
    if obj.expires_at and obj.expires_at <= timezone.now():
        return "expired"
    return "active"
