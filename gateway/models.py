"""Gateway data: API keys. Only a hash of each secret is stored; the secret is shown once at creation."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiKey(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField("label", max_length=100, blank=True)
    prefix = models.CharField(max_length=32, unique=True, help_text="Public part of the key, safe to show and to log.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False, help_text="SHA-256 of the secret.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "created_at"])]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name or 'no label'})"

    @property
    def is_active(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class PriceEntry(models.Model):
    """USD per million tokens for an upstream model (glob allowed), optionally for one provider."""

    provider = models.ForeignKey("providers.Provider", null=True, blank=True, on_delete=models.CASCADE)
    model_pattern = models.CharField(max_length=200, help_text="Upstream model id or glob (gpt-4o*, claude-sonnet-*).")
    input_per_mtok = models.DecimalField(max_digits=12, decimal_places=6)
    output_per_mtok = models.DecimalField(max_digits=12, decimal_places=6)
    cache_read_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    cache_write_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    priority = models.IntegerField(default=100, help_text="Lower wins when several patterns match.")
    note = models.CharField(max_length=200, blank=True, help_text="Source and date of the price.")

    class Meta:
        ordering = ["priority", "model_pattern"]
        verbose_name = "price"

    def __str__(self) -> str:
        return f"{self.model_pattern}: ${self.input_per_mtok}/${self.output_per_mtok} per Mtok"


class Session(models.Model):
    """A Claude Code session (X-Claude-Code-Session-Id), owned by the key's user."""

    external_id = models.CharField(max_length=200)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lynkr_sessions")
    api_key = models.ForeignKey(ApiKey, null=True, on_delete=models.SET_NULL)
    started_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    requests = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=6, default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "external_id"], name="session_unique_per_user")]
        indexes = [models.Index(fields=["user", "last_seen_at"])]

    def __str__(self) -> str:
        return self.external_id


class Turn(models.Model):
    """One request of a session: only the messages new since the previous turn, and the answer."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="turns")
    request_id = models.CharField(max_length=128, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    new_messages = models.JSONField(default=list)
    response = models.JSONField(null=True, blank=True)
    message_count = models.PositiveIntegerField(default=0, help_text="Messages in the request (history length).")
    history_hash = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the request's messages.")

    class Meta:
        ordering = ["created_at", "id"]
        # Each usage flush reads a session's latest turns up to a history length (gateway/accounting.py _History):
        # without this index that sorted every turn of the session, slower with each turn of a long session.
        indexes = [models.Index(fields=["session", "-message_count", "-id"], name="turn_session_history")]


class UsageRecord(models.Model):
    """One upstream attempt (kind=attempt) or one client request (kind=request); written in batches."""

    record_id = models.CharField(max_length=160, unique=True, help_text="request id + attempt: idempotent writes")
    kind = models.CharField(max_length=8, choices=[("request", "request"), ("attempt", "attempt")])
    request_id = models.CharField(max_length=128, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    api_key = models.ForeignKey(ApiKey, null=True, on_delete=models.SET_NULL)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    session = models.ForeignKey(Session, null=True, blank=True, on_delete=models.SET_NULL)
    provider = models.CharField(max_length=64, blank=True)
    upstream_model = models.CharField(max_length=200, blank=True)
    client_model = models.CharField(max_length=200, blank=True)
    route_rule = models.CharField(max_length=200, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cache_read_tokens = models.PositiveIntegerField(default=0)
    cache_write_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(
        max_digits=14, decimal_places=8, null=True, blank=True, help_text="Empty = unknown price."
    )
    latency_ms = models.PositiveIntegerField(default=0)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    status = models.PositiveSmallIntegerField(default=200)
    error_type = models.CharField(max_length=64, blank=True)
    cache_hit = models.BooleanField(default=False)
    stream = models.BooleanField(default=False)

    class Meta:
        indexes = [
            models.Index(fields=["api_key", "created_at"]),
            models.Index(fields=["user", "created_at"]),
            models.Index(fields=["kind", "created_at"]),
        ]

    def __str__(self) -> str:
        return self.record_id


class UsageDaily(models.Model):
    """Daily rollup per user, key, provider and model (requests only), for dashboards."""

    day = models.DateField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE)
    api_key = models.ForeignKey(ApiKey, null=True, on_delete=models.CASCADE)
    provider = models.CharField(max_length=64, blank=True)
    client_model = models.CharField(max_length=200, blank=True)
    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cache_read_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=16, decimal_places=6, default=0)
    unpriced_requests = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "user", "api_key", "provider", "client_model"], name="usage_daily_unique"
            )
        ]
        indexes = [models.Index(fields=["day"])]


class BudgetPeriod(models.TextChoices):
    DAY = "day", "day"
    WEEK = "week", "week (from Monday)"
    MONTH = "month", "calendar month"
    TOTAL = "total", "total (never resets)"


class Budget(models.Model):
    """A spending limit for a user, an API key or a team (Django group), in USD and/or tokens."""

    name = models.CharField(max_length=100)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.CASCADE)
    group = models.ForeignKey("auth.Group", null=True, blank=True, on_delete=models.CASCADE, verbose_name="team")
    period = models.CharField(max_length=8, choices=BudgetPeriod.choices, default=BudgetPeriod.MONTH)
    limit_usd = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    limit_tokens = models.BigIntegerField(null=True, blank=True, help_text="Input + output tokens.")
    soft_threshold = models.DecimalField(
        max_digits=4, decimal_places=3, default=0.8, help_text="Fraction of the limit that triggers a warning."
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if sum(x is not None for x in (self.user_id, self.api_key_id, self.group_id)) != 1:
            raise ValidationError("Attach a budget to exactly one of: a user, an API key, a team.")
        if self.limit_usd is None and self.limit_tokens is None:
            raise ValidationError("Give a limit in USD, in tokens, or both.")


class BudgetUsage(models.Model):
    """The spend of a budget in one period (the DB-backed counter when Redis is not configured)."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="usage")
    period_start = models.DateTimeField()
    spent_usd = models.DecimalField(max_digits=16, decimal_places=8, default=0)
    spent_tokens = models.BigIntegerField(default=0)
    reserved_usd = models.DecimalField(max_digits=16, decimal_places=8, default=0)
    reserved_tokens = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["budget", "period_start"], name="budget_usage_unique")]


class RateLimit(models.Model):
    """Per-minute limits for a user or an API key (empty = unlimited)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.CASCADE)
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    input_tokens_per_minute = models.PositiveIntegerField(null=True, blank=True)
    output_tokens_per_minute = models.PositiveIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"limits for {self.api_key or self.user}"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if (self.user_id is None) == (self.api_key_id is None):
            raise ValidationError("Attach rate limits to exactly one of: a user, an API key.")
