"""Reads of provider configuration; return plain dataclasses, never model instances."""

from __future__ import annotations

import logging
import os
from types import MappingProxyType

from django.conf import settings

from providers.models import Provider
from providers.routing import ProviderConfig, RoutingSnapshot

logger = logging.getLogger(__name__)


def provider_credential(provider: Provider) -> str:
    if provider.api_key_env:
        value = os.environ.get(provider.api_key_env, "")
        if not value and os.environ.get(f"{provider.api_key_env}_FILE"):
            from lynkr_site.env import get_secret

            value = get_secret(provider.api_key_env)
        if not value:
            logger.warning("provider %s: environment variable %s is empty", provider.name, provider.api_key_env)
        return value
    return provider.api_key


def provider_to_config(provider: Provider) -> ProviderConfig:
    return ProviderConfig(
        id=provider.pk,
        name=provider.name,
        kind=provider.kind,
        base_url=provider.base_url,
        credential=provider_credential(provider),
        auth_style=provider.auth_style,
        api_version=provider.api_version,
        model_override=provider.model_override,
        advertised_models=tuple(provider.advertised_models or ()),
        supports_count_tokens=provider.supports_count_tokens,
        connect_timeout=provider.connect_timeout or settings.LYNKR_UPSTREAM_CONNECT_TIMEOUT,
        read_timeout=provider.read_timeout or settings.LYNKR_UPSTREAM_READ_TIMEOUT,
        supports_tools=provider.supports_tools,
        supports_images=provider.supports_images,
        supports_thinking=provider.supports_thinking,
        context_window=provider.context_window,
        max_output_tokens=provider.max_output_tokens,
        options=MappingProxyType(dict(provider.options or {})),
    )


def routing_snapshot_build() -> RoutingSnapshot:
    providers = Provider.objects.filter(enabled=True).order_by("priority", "name")
    return RoutingSnapshot(tuple(provider_to_config(p) for p in providers))
