"""Reads of provider configuration; return plain dataclasses, never model instances."""

from __future__ import annotations

import dataclasses
import logging
import os
from types import MappingProxyType

from django.conf import settings

from providers.models import ModelMapping, Provider, RouteTier, RoutingRule, RoutingVersion
from providers.routing import MappingConfig, ProviderConfig, RoutingSnapshot, RuleConfig, TargetConfig, TierConfig

logger = logging.getLogger(__name__)


def provider_credential(provider: Provider) -> str:
    if provider.api_key_env.startswith("file:"):
        path = provider.api_key_env[5:]
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read().strip()
        except OSError as exc:
            logger.warning("provider %s: cannot read credential file %s (%s)", provider.name, path, exc.strerror)
            return ""
    if provider.api_key_env:
        value = os.environ.get(provider.api_key_env, "")
        if not value and os.environ.get(f"{provider.api_key_env}_FILE"):
            from lynkr_site.env import get_secret

            value = get_secret(provider.api_key_env)
        if not value:
            logger.warning("provider %s: environment variable %s is empty", provider.name, provider.api_key_env)
        return value
    return str(provider.api_key)


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


def _target(provider: ProviderConfig, upstream_model: str, window: int | None, output: int | None) -> TargetConfig:
    if window or output:
        provider = dataclasses.replace(
            provider,
            context_window=window or provider.context_window,
            max_output_tokens=output or provider.max_output_tokens,
        )
    return TargetConfig(provider, upstream_model)


def routing_version_get() -> int:
    row = RoutingVersion.objects.filter(pk=1).first()
    return row.version if row else 0


def routing_snapshot_build() -> RoutingSnapshot:
    version = routing_version_get()
    configs = {p.pk: provider_to_config(p) for p in Provider.objects.filter(enabled=True).order_by("priority", "name")}
    tiers = []
    for tier in RouteTier.objects.prefetch_related("targets").order_by("order", "name"):
        targets = tuple(
            _target(configs[t.provider_id], t.upstream_model, t.context_window, t.max_output_tokens)
            for t in sorted(tier.targets.all(), key=lambda t: (t.order, t.pk))
            if t.provider_id in configs
        )
        tiers.append(TierConfig(tier.name, tier.order, tier.long_context, tier.max_attempts, targets))
    tier_names = {t.pk: t.name for t in RouteTier.objects.all()}
    mappings = tuple(
        MappingConfig(
            match_type=m.match_type,
            pattern=m.pattern,
            target=_target(configs[m.provider_id], m.upstream_model, m.context_window, m.max_output_tokens),
            fallback_tier=tier_names.get(m.fallback_tier_id) if m.fallback_tier_id else None,
            key_id=m.api_key_id,
            user_id=m.user_id,
            group_id=m.group_id,
            priority=m.priority,
        )
        for m in ModelMapping.objects.filter(enabled=True).order_by("priority", "id")
        if m.provider_id in configs
    )
    rules = tuple(
        RuleConfig(
            name=r.name,
            tier=tier_names[r.tier_id],
            min_tools=r.min_tools,
            max_tools=r.max_tools,
            client_model=r.client_model,
            background=r.background,
            thinking=r.thinking,
            min_input_tokens=r.min_input_tokens,
            has_images=r.has_images,
            header_name=r.header_name,
            header_value=r.header_value,
            key_id=r.api_key_id,
            user_id=r.user_id,
            group_id=r.group_id,
        )
        for r in RoutingRule.objects.filter(enabled=True).order_by("order", "id")
    )
    fallback: tuple[TargetConfig, ...] = ()
    if settings.LYNKR_FALLBACK_ENABLED and settings.LYNKR_FALLBACK_PROVIDER:
        named = [c for c in configs.values() if c.name == settings.LYNKR_FALLBACK_PROVIDER]
        fallback = tuple(TargetConfig(c) for c in named)
    return RoutingSnapshot(tuple(configs.values()), tuple(tiers), mappings, rules, fallback, version)
