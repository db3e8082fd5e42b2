"""The routing snapshot: an immutable picture of the enabled providers, and pure route selection.

The snapshot is built from the database off the hot path (at most once per ``LYNKR_ROUTING_TTL`` seconds, and
at once after an admin save in this process) so no request runs an ORM query to learn where it goes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# The ids Claude Code sends by default (claude-code-wire.md §3 and §8); listed by /v1/models for a provider
# that does not name the models it serves.
DEFAULT_CLIENT_MODELS = (
    "claude-opus-5-5",
    "claude-opus-4-8",
    "claude-sonnet-5",
    "claude-haiku-4-5-20251001",
)


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    id: int
    name: str
    kind: str
    base_url: str
    credential: str = field(repr=False)
    auth_style: str = "x-api-key"
    api_version: str = "2023-06-01"
    model_override: str = ""
    advertised_models: tuple[str, ...] = ()
    supports_count_tokens: bool = True
    connect_timeout: float = 10.0
    read_timeout: float = 600.0
    supports_tools: bool = True
    supports_images: bool = True
    supports_thinking: bool = False
    context_window: int | None = None
    max_output_tokens: int | None = None
    # Per-kind knobs (strict_schema, system_messages, reasoning_echo, extra_headers, deployment ...): docs/providers.md
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class Route:
    provider: ProviderConfig
    upstream_model: str
    client_model: str


@dataclass(frozen=True, slots=True)
class TargetConfig:
    """A provider and the upstream model to ask it for ("" = the provider's override, else the client's model).
    Target-level limits are already applied to ``provider`` when the snapshot is built."""

    provider: ProviderConfig
    upstream_model: str = ""


@dataclass(frozen=True, slots=True)
class TierConfig:
    name: str
    order: int = 100
    long_context: bool = False
    max_attempts: int = 3
    targets: tuple[TargetConfig, ...] = ()


@dataclass(frozen=True, slots=True)
class MappingConfig:
    match_type: str  # exact | glob | any
    pattern: str
    target: TargetConfig
    fallback_tier: str | None = None
    key_id: int | None = None
    user_id: int | None = None
    group_id: int | None = None
    priority: int = 100


@dataclass(frozen=True, slots=True)
class RuleConfig:
    name: str
    tier: str
    min_tools: int | None = None
    max_tools: int | None = None
    client_model: str = ""
    background: bool | None = None
    thinking: bool | None = None
    min_input_tokens: int | None = None
    has_images: bool | None = None
    header_name: str = ""
    header_value: str = ""
    key_id: int | None = None
    user_id: int | None = None
    group_id: int | None = None


@dataclass(frozen=True, slots=True)
class RoutingSnapshot:
    providers: tuple[ProviderConfig, ...]
    tiers: tuple[TierConfig, ...] = ()
    mappings: tuple[MappingConfig, ...] = ()
    rules: tuple[RuleConfig, ...] = ()
    fallback: tuple[TargetConfig, ...] = ()  # FALLBACK_PROVIDER: tried after any chain
    version: int = 0

    def models(self) -> list[str]:
        """Client model ids this deployment answers for, in provider priority order, without duplicates."""
        seen: dict[str, None] = {}
        for mapping in self.mappings:
            if mapping.match_type == "exact":
                seen.setdefault(mapping.pattern, None)
        for provider in self.providers:
            for model in provider.advertised_models or DEFAULT_CLIENT_MODELS:
                seen.setdefault(model, None)
        return list(seen)

    def tier(self, name: str | None) -> TierConfig | None:
        return next((tier for tier in self.tiers if tier.name == name), None)


class NoRouteError(Exception):
    pass


def route_select(snapshot: RoutingSnapshot, *, client_model: str) -> Route:
    """The first enabled provider, by priority, that advertises the model (or advertises nothing)."""
    for provider in snapshot.providers:
        if provider.advertised_models and client_model not in provider.advertised_models:
            continue
        return Route(provider, provider.model_override or client_model, client_model)
    if not snapshot.providers:
        raise NoRouteError("no provider is configured: add one in admin or set MODEL_PROVIDER (see docs/providers.md)")
    raise NoRouteError(f"no provider serves model {client_model!r}")
