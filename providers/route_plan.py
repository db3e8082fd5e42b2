"""Pure route selection: request facts + the routing snapshot -> the ordered targets to try, and why.

1. Rules, in order: the first enabled rule whose every set condition holds picks a tier; its targets are the
   fallback chain.
2. Else the model mappings: scoped to the key, then the user, then a team, then global; by priority; the first
   whose pattern matches the client model gives the first target, its fallback tier the rest.
3. Else every enabled provider that serves the model, by priority (the behaviour with no routing configured).
Then ``FALLBACK_PROVIDER`` (when enabled) is appended, targets that cannot take the request are removed (tools on
a tool-less target, images on a text-only one; a tier left empty moves the request to the next tier), and targets
whose context window is too small for the estimated input give way to a long-context tier, or the request is
refused with Anthropic's "prompt is too long" wording, which Claude Code shows and acts on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from providers.routing import (
    MappingConfig,
    NoRouteError,
    Route,
    RoutingSnapshot,
    RuleConfig,
    TargetConfig,
    TierConfig,
)


@dataclass(frozen=True, slots=True)
class RequestFacts:
    client_model: str
    tool_count: int = 0
    has_images: bool = False
    thinking: bool = False
    input_tokens: int = 0
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-cased names
    key_id: int | None = None
    user_id: int | None = None
    group_ids: frozenset[int] = frozenset()

    @property
    def background(self) -> bool:
        """Claude Code's small/fast-model requests use haiku ids (claude-code-wire.md §3)."""
        return "haiku" in self.client_model.lower()


@dataclass(frozen=True, slots=True)
class RoutePlan:
    routes: tuple[Route, ...]
    rule: str  # what decided: a rule name, "mapping:<pattern>", or "default"
    tier: str | None = None
    max_attempts: int = 3


class CapabilityError(Exception):
    """No target can take this request (e.g. tools, but every target is tool-incapable)."""


class PromptTooLongError(Exception):
    def __init__(self, tokens: int, window: int) -> None:
        super().__init__(f"prompt is too long: {tokens} tokens > {window} maximum")
        self.tokens = tokens
        self.window = window


def rule_matches(rule: RuleConfig, facts: RequestFacts) -> bool:
    checks = (
        rule.min_tools is None or facts.tool_count >= rule.min_tools,
        rule.max_tools is None or facts.tool_count <= rule.max_tools,
        not rule.client_model or fnmatchcase(facts.client_model, rule.client_model),
        rule.background is None or facts.background == rule.background,
        rule.thinking is None or facts.thinking == rule.thinking,
        rule.min_input_tokens is None or facts.input_tokens >= rule.min_input_tokens,
        rule.has_images is None or facts.has_images == rule.has_images,
        rule.key_id is None or facts.key_id == rule.key_id,
        rule.user_id is None or facts.user_id == rule.user_id,
        rule.group_id is None or rule.group_id in facts.group_ids,
        _header_matches(rule, facts),
    )
    return all(checks)


def _header_matches(rule: RuleConfig, facts: RequestFacts) -> bool:
    if not rule.header_name:
        return True
    value = facts.headers.get(rule.header_name.lower())
    if value is None:
        return False
    return not rule.header_value or fnmatchcase(value, rule.header_value)


def mapping_matches(mapping: MappingConfig, facts: RequestFacts) -> bool:
    if mapping.key_id is not None and mapping.key_id != facts.key_id:
        return False
    if mapping.user_id is not None and mapping.user_id != facts.user_id:
        return False
    if mapping.group_id is not None and mapping.group_id not in facts.group_ids:
        return False
    if mapping.match_type == "any":
        return True
    if mapping.match_type == "glob":
        return fnmatchcase(facts.client_model, mapping.pattern)
    return facts.client_model == mapping.pattern


def _scope_rank(mapping: MappingConfig) -> int:
    if mapping.key_id is not None:
        return 0
    if mapping.user_id is not None:
        return 1
    if mapping.group_id is not None:
        return 2
    return 3


def _capable(target: TargetConfig, facts: RequestFacts) -> bool:
    provider = target.provider
    if facts.tool_count and not provider.supports_tools:
        return False
    return not (facts.has_images and not provider.supports_images)


def _fits(target: TargetConfig, facts: RequestFacts) -> bool:
    window = target.provider.context_window
    return window is None or facts.input_tokens <= window


def _default_chain(snapshot: RoutingSnapshot, facts: RequestFacts) -> list[TargetConfig]:
    return [
        TargetConfig(provider)
        for provider in snapshot.providers
        if not provider.advertised_models or facts.client_model in provider.advertised_models
    ]


def _chain(snapshot: RoutingSnapshot, facts: RequestFacts) -> tuple[list[TargetConfig], str, TierConfig | None]:
    for rule in snapshot.rules:
        if rule_matches(rule, facts):
            tier = snapshot.tier(rule.tier)
            return list(tier.targets if tier else ()), rule.name, tier
    mappings = sorted(
        (m for m in snapshot.mappings if mapping_matches(m, facts)), key=lambda m: (_scope_rank(m), m.priority)
    )
    if mappings:
        mapping = mappings[0]
        fallback = snapshot.tier(mapping.fallback_tier)
        chain = [mapping.target, *(fallback.targets if fallback else ())]
        return chain, f"mapping:{mapping.pattern or '*'}", fallback
    return _default_chain(snapshot, facts), "default", None


def _dedupe(targets: list[TargetConfig]) -> list[TargetConfig]:
    """One attempt per (provider, effective upstream model)."""
    seen: set[tuple[int, str]] = set()
    out = []
    for target in targets:
        key = (target.provider.id, target.upstream_model or target.provider.model_override)
        if key not in seen:
            seen.add(key)
            out.append(target)
    return out


def route_plan(snapshot: RoutingSnapshot, facts: RequestFacts) -> RoutePlan:
    chain, rule, tier = _chain(snapshot, facts)
    chain = _dedupe(chain)
    fallback = list(snapshot.fallback)
    if not chain and not fallback:
        if not snapshot.providers:
            raise NoRouteError(
                "no provider is configured: add one in admin or set MODEL_PROVIDER (see docs/providers.md)"
            )
        raise NoRouteError(f"no provider serves model {facts.client_model!r}")
    considered = list(chain)
    capable = [t for t in chain if _capable(t, facts)]
    if not capable and tier is not None:
        # The tier cannot take this request (e.g. tools): move to the next heavier tier that can.
        for heavier in sorted((t for t in snapshot.tiers if t.order > tier.order), key=lambda t: t.order):
            considered += heavier.targets
            capable = [t for t in heavier.targets if _capable(t, facts)]
            if capable:
                rule, tier = f"{rule}>{heavier.name}", heavier
                break
    windows = [t.provider.context_window or 0 for t in capable]
    fitting = [t for t in capable if _fits(t, facts)]
    if capable and not fitting:
        for long_tier in (t for t in snapshot.tiers if t.long_context):
            long_capable = [t for t in long_tier.targets if _capable(t, facts)]
            windows += [t.provider.context_window or 0 for t in long_capable]
            fitting = [t for t in long_capable if _fits(t, facts)]
            if fitting:
                rule, tier = f"{rule}>{long_tier.name}", long_tier
                break
    # FALLBACK_PROVIDER is tried after whatever chain was chosen, if it can take the request.
    usable_fallback = [t for t in fallback if _capable(t, facts)]
    windows += [t.provider.context_window or 0 for t in usable_fallback]
    targets = _dedupe(fitting + [t for t in usable_fallback if _fits(t, facts)])
    if not targets:
        if not capable and not usable_fallback:
            everything = considered + fallback
            tools_ok = any(t.provider.supports_tools for t in everything)
            needs = "tools" if facts.tool_count and not tools_ok else "images" if facts.has_images else "tools"
            raise CapabilityError(f"no provider on this route accepts {needs} (route: {rule})")
        raise PromptTooLongError(facts.input_tokens, max(windows))
    routes = tuple(
        Route(t.provider, t.upstream_model or t.provider.model_override or facts.client_model, facts.client_model)
        for t in targets
    )
    return RoutePlan(routes, rule, tier.name if tier else None, tier.max_attempts if tier else 3)
