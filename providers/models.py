"""Where requests go: upstream providers."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import models

from providers.secrets import EncryptedTextField


def validate_http_url(value: str) -> None:
    """http(s) with a host. Unlike Django's URLValidator, single-label hosts are fine: in-cluster upstreams are
    named like ``http://vllm:8000`` or ``http://ollama:11434``."""
    try:
        parts = urlsplit(value)
        _ = parts.port
    except ValueError as exc:
        raise ValidationError(f"Not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("Enter an http:// or https:// URL with a host, e.g. https://api.anthropic.com")


class ProviderKind(models.TextChoices):
    ANTHROPIC = "anthropic", "Anthropic Messages API (Anthropic, Azure AI Foundry /anthropic, compatible gateways)"
    OPENAI_CHAT = "openai_chat", "OpenAI chat completions (OpenAI, OpenRouter, Databricks, vLLM, LM Studio, llama.cpp)"
    AZURE_OPENAI = "azure_openai", "Azure OpenAI chat completions (deployments, AI Foundry /models)"
    OPENAI_RESPONSES = "openai_responses", "OpenAI Responses API (OpenAI, Azure)"
    OLLAMA = "ollama", "Ollama native /api/chat"


class AuthStyle(models.TextChoices):
    X_API_KEY = "x-api-key", "x-api-key header"
    BEARER = "bearer", "Authorization: Bearer"
    API_KEY = "api-key", "api-key header (Azure OpenAI)"
    NONE = "none", "no credential"


class ProviderSource(models.TextChoices):
    ENV = "env", "from environment"
    ADMIN = "admin", "created in admin"


class Provider(models.Model):
    name = models.SlugField(max_length=64, unique=True)
    kind = models.CharField(max_length=32, choices=ProviderKind.choices, default=ProviderKind.ANTHROPIC)
    base_url = models.CharField(
        max_length=500,
        validators=[validate_http_url],
        help_text="Base URL (https://host) or the full Messages URL (https://host/anthropic/v1/messages).",
    )
    api_key = EncryptedTextField(
        blank=True, help_text="Credential sent upstream; stored encrypted, never shown in full or logged."
    )
    api_key_env = models.CharField(
        max_length=300,
        blank=True,
        help_text="Read the credential from this environment variable (NAME) or file (file:/run/secrets/x) instead.",
    )
    auth_style = models.CharField(max_length=16, choices=AuthStyle.choices, default=AuthStyle.X_API_KEY)
    api_version = models.CharField(max_length=32, default="2023-06-01", help_text="anthropic-version default.")
    model_override = models.CharField(
        max_length=200, blank=True, help_text="Send this upstream model instead of the client's (MODEL_DEFAULT)."
    )
    advertised_models = models.JSONField(
        default=list, blank=True, help_text="Client model ids listed by /v1/models for this provider."
    )
    supports_count_tokens = models.BooleanField(default=True)
    connect_timeout = models.FloatField(null=True, blank=True, help_text="Seconds; empty = gateway default.")
    read_timeout = models.FloatField(null=True, blank=True, help_text="Seconds; empty = gateway default.")
    supports_tools = models.BooleanField(default=True)
    supports_images = models.BooleanField(default=True)
    supports_thinking = models.BooleanField(
        default=False, help_text="Send reasoning settings (reasoning_effort / think) and expect reasoning output."
    )
    context_window = models.PositiveIntegerField(null=True, blank=True, help_text="Tokens; empty = unknown.")
    max_output_tokens = models.PositiveIntegerField(
        null=True, blank=True, help_text="max_tokens is clamped to this; empty = no clamp."
    )
    options = models.JSONField(default=dict, blank=True, help_text="Per-kind settings, see docs/providers.md.")
    enabled = models.BooleanField(default=True)
    priority = models.IntegerField(default=100, help_text="Lower is tried first.")
    source = models.CharField(
        max_length=8, choices=ProviderSource.choices, default=ProviderSource.ADMIN, editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.api_key and self.api_key_env:
            raise ValidationError({"api_key_env": "Give either a credential or an environment variable, not both."})
        if not isinstance(self.options, dict):
            raise ValidationError({"options": 'A JSON object, e.g. {"strict_schema": true}.'})
        if not isinstance(self.advertised_models, list) or not all(isinstance(m, str) for m in self.advertised_models):
            raise ValidationError({"advertised_models": 'A JSON list of model ids, e.g. ["claude-sonnet-5"].'})


class MatchType(models.TextChoices):
    EXACT = "exact", "exact id"
    GLOB = "glob", "glob pattern (claude-*haiku*)"
    ANY = "any", "any model"


class RouteTier(models.Model):
    """A named group of targets tried in order (its fallback chain). Tiers are ordered light -> heavy: a request a
    tier cannot serve (tools on a tool-less target) moves to the next one."""

    name = models.SlugField(max_length=64, unique=True)
    description = models.CharField(max_length=200, blank=True)
    order = models.IntegerField(default=100, help_text="Lower is lighter; the next tier is the next higher order.")
    long_context = models.BooleanField(
        default=False, help_text="Used when the prompt does not fit the chosen target's context window."
    )
    max_attempts = models.PositiveSmallIntegerField(
        default=4, help_text="Cap on upstream attempts (retries and fallbacks together) for one request."
    )
    source = models.CharField(
        max_length=8, choices=ProviderSource.choices, default=ProviderSource.ADMIN, editable=False
    )

    class Meta:
        ordering = ["order", "name"]

    def __str__(self) -> str:
        return self.name


class TierTarget(models.Model):
    """One entry of a tier's fallback chain: a provider and the upstream model to ask for."""

    tier = models.ForeignKey(RouteTier, on_delete=models.CASCADE, related_name="targets")
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="tier_targets")
    upstream_model = models.CharField(
        max_length=200, blank=True, help_text="Empty: the provider's override, else the client's model."
    )
    context_window = models.PositiveIntegerField(null=True, blank=True)
    max_output_tokens = models.PositiveIntegerField(null=True, blank=True)
    order = models.IntegerField(default=0)

    class Meta:
        ordering = ["tier", "order", "id"]
        verbose_name = "fallback chain entry"
        verbose_name_plural = "fallback chain"

    def __str__(self) -> str:
        return f"{self.tier}#{self.order} {self.provider}:{self.upstream_model or '*'}"


class ModelMapping(models.Model):
    """Client model (exact, glob or any) -> a provider and upstream model, optionally for one key, user or team."""

    match_type = models.CharField(max_length=8, choices=MatchType.choices, default=MatchType.EXACT)
    pattern = models.CharField(max_length=200, blank=True, help_text="claude-sonnet-5, claude-*haiku*, ...")
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="mappings")
    upstream_model = models.CharField(max_length=200, blank=True)
    context_window = models.PositiveIntegerField(null=True, blank=True)
    max_output_tokens = models.PositiveIntegerField(null=True, blank=True)
    fallback_tier = models.ForeignKey(
        RouteTier, null=True, blank=True, on_delete=models.SET_NULL, help_text="Tried after this target fails."
    )
    api_key = models.ForeignKey("gateway.ApiKey", null=True, blank=True, on_delete=models.CASCADE)
    user = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.CASCADE)
    group = models.ForeignKey("auth.Group", null=True, blank=True, on_delete=models.CASCADE, verbose_name="team")
    priority = models.IntegerField(default=100, help_text="Lower first; scoped mappings win over global ones.")
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["priority", "id"]

    def __str__(self) -> str:
        return f"{self.pattern or '*'} -> {self.provider}:{self.upstream_model or '*'}"

    def clean(self) -> None:
        if self.match_type != MatchType.ANY and not self.pattern:
            raise ValidationError({"pattern": "A pattern is needed unless the match type is 'any model'."})
        if sum(x is not None for x in (self.api_key_id, self.user_id, self.group_id)) > 1:
            raise ValidationError("Scope a mapping to one API key, one user or one team, not several.")


class RoutingRule(models.Model):
    """Ordered; the first enabled rule whose every set condition holds picks the tier. Empty conditions match."""

    name = models.SlugField(max_length=64, unique=True)
    order = models.IntegerField(default=100)
    enabled = models.BooleanField(default=True)
    tier = models.ForeignKey(RouteTier, on_delete=models.CASCADE, related_name="rules")
    min_tools = models.PositiveIntegerField(null=True, blank=True)
    max_tools = models.PositiveIntegerField(null=True, blank=True, help_text="Inclusive.")
    client_model = models.CharField(max_length=200, blank=True, help_text="Glob on the client's model id.")
    background = models.BooleanField(
        null=True, blank=True, help_text="Small/background requests (haiku model ids); empty = either."
    )
    thinking = models.BooleanField(null=True, blank=True, help_text="Thinking requested; empty = either.")
    min_input_tokens = models.PositiveIntegerField(null=True, blank=True, help_text="Estimated input tokens.")
    has_images = models.BooleanField(null=True, blank=True)
    header_name = models.CharField(max_length=100, blank=True, help_text="e.g. x-gateway-tenant")
    header_value = models.CharField(max_length=200, blank=True, help_text="Glob; empty = header present.")
    api_key = models.ForeignKey("gateway.ApiKey", null=True, blank=True, on_delete=models.CASCADE)
    user = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.CASCADE)
    group = models.ForeignKey("auth.Group", null=True, blank=True, on_delete=models.CASCADE, verbose_name="team")
    source = models.CharField(
        max_length=8, choices=ProviderSource.choices, default=ProviderSource.ADMIN, editable=False
    )

    class Meta:
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.min_tools is not None and self.max_tools is not None and self.min_tools > self.max_tools:
            raise ValidationError({"max_tools": "Must be at least min_tools."})
        if self.header_value and not self.header_name:
            raise ValidationError({"header_name": "Name the header whose value is matched."})


class RoutingVersion(models.Model):
    """One row; bumped whenever routing configuration changes, so every process rebuilds its snapshot."""

    version = models.BigIntegerField(default=0)
    changed_at = models.DateTimeField(auto_now=True)
