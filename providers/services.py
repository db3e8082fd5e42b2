"""Writes of provider configuration."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from django.db import transaction

from providers.envseed import provider_env_specs
from providers.models import Provider, ProviderSource

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
