"""Writes of provider configuration."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from providers.envseed import provider_env_specs
from providers.models import Provider, ProviderSource, RouteTier, RoutingRule, RoutingVersion, TierTarget
from providers.snapshot import VERSION_KEY, routing_snapshot_invalidate

logger = logging.getLogger(__name__)

# Fields an env provider gets back to their defaults unless its spec sets them (a variable removed from the
# environment must not leave its old value behind).
_RESET: dict[str, object] = {
    "api_key": "",
    "api_key_env": "",
    "model_override": "",
    "options": {},
    "read_timeout": None,
    "supports_thinking": False,
    "api_version": "2023-06-01",
}


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
        defaults = {**_RESET, **{k: v for k, v in spec.items() if k != "name"}}
        Provider.objects.update_or_create(
            name=name, defaults={**defaults, "source": ProviderSource.ENV, "enabled": True}
        )
        synced.append(name)
    Provider.objects.filter(source=ProviderSource.ENV).exclude(name__in=synced).update(enabled=False)
    return synced


def routing_version_bump() -> int:
    """Record that routing changed; with Redis, also publish the version where every process polls it."""
    with transaction.atomic():
        row, _ = RoutingVersion.objects.select_for_update().get_or_create(pk=1)
        row.version += 1
        row.save(update_fields=["version", "changed_at"])
    routing_snapshot_invalidate()
    if settings.REDIS_URL:
        cache.set(VERSION_KEY, row.version, timeout=None)
    return row.version


@transaction.atomic
def routing_sync_hybrid_from_env(
    *, prefer_ollama: bool, ollama_max_tools: int, mid_max_tools: int, fallback_provider: str
) -> list[str]:
    """Lynkr's hybrid routing as tiers and rules (source "env", re-created at every start; edit the environment
    or copy them in admin to change them): 0..OLLAMA_MAX_TOOLS_FOR_ROUTING-1 tools -> local (Ollama),
    up to OPENROUTER_MAX_TOOLS_FOR_ROUTING -> mid (the first of OpenRouter, OpenAI, Azure OpenAI), more -> heavy
    (FALLBACK_PROVIDER, else the mid tier's provider)."""
    RoutingRule.objects.filter(source=ProviderSource.ENV).delete()
    RouteTier.objects.filter(source=ProviderSource.ENV).delete()
    if not prefer_ollama:
        return []
    providers = {p.name: p for p in Provider.objects.filter(enabled=True)}
    local = providers.get("ollama")
    mid = next((providers[n] for n in ("openrouter", "openai", "azure-openai") if n in providers), None)
    heavy = providers.get(fallback_provider) or mid
    created: list[str] = []
    plan = [
        ("hybrid-local", local, 10, {"max_tools": max(ollama_max_tools - 1, 0)}),
        ("hybrid-mid", mid, 20, {"max_tools": mid_max_tools}),
        ("hybrid-heavy", heavy, 30, {}),
    ]
    for name, provider, order, conditions in plan:
        if provider is None:
            continue
        tier = RouteTier.objects.create(name=name, order=order, source=ProviderSource.ENV)
        TierTarget.objects.create(tier=tier, provider=provider)
        RoutingRule.objects.create(name=name, order=order, tier=tier, source=ProviderSource.ENV, **conditions)
        created.append(name)
    if local is None:
        logger.warning("PREFER_OLLAMA is set but no Ollama provider is configured (OLLAMA_ENDPOINT / OLLAMA_MODEL)")
    return created
