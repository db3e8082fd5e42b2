"""Writes of provider configuration."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from providers.models import AuthStyle, Provider, ProviderKind, ProviderSource

logger = logging.getLogger(__name__)

# Lynkr's MODEL_PROVIDER values (claude-code-wire / lynkr-env.md). Only those with an adapter are seeded;
# the others are recognised so that a Lynkr .env is not rejected, and named in a warning.
LYNKR_PROVIDER_NAMES = frozenset(
    {
        "databricks",
        "azure-anthropic",
        "azure-openai",
        "openrouter",
        "ollama",
        "openai",
        "bedrock",
        "vertex",
        "llamacpp",
        "lmstudio",
    }
)


def provider_env_specs(values: Mapping[str, str]) -> list[dict[str, object]]:
    """The providers a Lynkr environment describes, as field dicts (pure; tested without a database)."""
    primary = values.get("MODEL_PROVIDER", "").strip().lower()
    if primary and primary not in LYNKR_PROVIDER_NAMES:
        raise ImproperlyConfigured(
            f"MODEL_PROVIDER={primary!r} is invalid: expected one of {', '.join(sorted(LYNKR_PROVIDER_NAMES))}"
        )
    specs: list[dict[str, object]] = []
    endpoint = values.get("AZURE_ANTHROPIC_ENDPOINT", "").strip()
    if endpoint:
        if not endpoint.startswith(("http://", "https://")):
            raise ImproperlyConfigured(f"AZURE_ANTHROPIC_ENDPOINT={endpoint!r} is invalid: expected an http(s) URL")
        specs.append(
            {
                "name": "azure-anthropic",
                "kind": ProviderKind.ANTHROPIC,
                "base_url": endpoint,
                "api_key": "",
                "api_key_env": "AZURE_ANTHROPIC_API_KEY",
                "auth_style": AuthStyle.X_API_KEY,
                "api_version": values.get("AZURE_ANTHROPIC_VERSION") or "2023-06-01",
                "model_override": values.get("MODEL_DEFAULT", "") if primary in {"", "azure-anthropic"} else "",
                "priority": 10 if primary == "azure-anthropic" else 50,
            }
        )
    elif primary == "azure-anthropic":
        raise ImproperlyConfigured("MODEL_PROVIDER=azure-anthropic needs AZURE_ANTHROPIC_ENDPOINT")
    if primary and primary != "azure-anthropic":
        logger.warning("MODEL_PROVIDER=%s is recognised but this version cannot serve it yet; not seeded", primary)
    return specs


@transaction.atomic
def provider_sync_from_env(*, values: Mapping[str, str]) -> list[str]:
    """Create/update the providers the environment describes; disable env providers no longer described."""
    specs = provider_env_specs(values)
    synced: list[str] = []
    for spec in specs:
        name = str(spec["name"])
        existing = Provider.objects.filter(name=name).first()
        if existing is not None and existing.source != ProviderSource.ENV:
            logger.warning("provider %s exists in admin; the environment's definition is not applied", name)
            continue
        defaults = {k: v for k, v in spec.items() if k != "name"}
        Provider.objects.update_or_create(
            name=name, defaults={**defaults, "source": ProviderSource.ENV, "enabled": True}
        )
        synced.append(name)
    Provider.objects.filter(source=ProviderSource.ENV).exclude(name__in=synced).update(enabled=False)
    return synced
