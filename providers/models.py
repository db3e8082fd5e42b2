"""Where requests go: upstream providers."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import models


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
    api_key = models.TextField(blank=True, help_text="Credential sent upstream. Never shown in full or logged.")
    api_key_env = models.CharField(
        max_length=100, blank=True, help_text="Read the credential from this environment variable instead."
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
