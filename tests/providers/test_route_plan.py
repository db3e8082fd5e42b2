"""Pure route selection (providers/route_plan.py): rules, mappings, the default chain, the FALLBACK provider,
capability filtering, context windows, and why each decision was made."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from providers.route_plan import (
    CapabilityError,
    PromptTooLongError,
    RequestFacts,
    RoutePlan,
    mapping_matches,
    route_plan,
    rule_matches,
)
from providers.routing import (
    MappingConfig,
    NoRouteError,
    ProviderConfig,
    Route,
    RoutingSnapshot,
    RuleConfig,
    TargetConfig,
    TierConfig,
)

OPUS = "claude-opus-4-8"
SONNET = "claude-sonnet-5"
HAIKU = "claude-haiku-4-5-20251001"
NO_PROVIDERS = "no provider is configured: add one in admin or set MODEL_PROVIDER (see docs/providers.md)"


def _provider(id: int, **changes: Any) -> ProviderConfig:
    fields: dict[str, Any] = {
        "id": id,
        "name": f"p{id}",
        "kind": "anthropic",
        "base_url": f"https://p{id}.example",
        "credential": f"secret-{id}",
    }
    return ProviderConfig(**{**fields, **changes})


def _tier(name: str, *targets: ProviderConfig | TargetConfig, **changes: Any) -> TierConfig:
    wrapped = tuple(t if isinstance(t, TargetConfig) else TargetConfig(t) for t in targets)
    return TierConfig(name, targets=wrapped, **changes)


def _facts(model: str = OPUS, **changes: Any) -> RequestFacts:
    return RequestFacts(model, **changes)


def _rule(tier: str = "t", name: str = "r", **conditions: Any) -> RuleConfig:
    return RuleConfig(name, tier, **conditions)


def _mapping(
    pattern: str, target: ProviderConfig | TargetConfig, match_type: str = "exact", **changes: Any
) -> MappingConfig:
    wrapped = target if isinstance(target, TargetConfig) else TargetConfig(target)
    return MappingConfig(match_type, pattern, wrapped, **changes)


def _chain(plan: RoutePlan) -> list[tuple[str, str]]:
    return [(route.provider.name, route.upstream_model) for route in plan.routes]


def _names(plan: RoutePlan) -> list[str]:
    return [route.provider.name for route in plan.routes]


# --- RequestFacts -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "background"),
    [
        (HAIKU, True),
        ("claude-3-5-haiku-latest", True),
        ("CLAUDE-HAIKU-X", True),
        (OPUS, False),
        (SONNET, False),
        ("gpt-oss:20b", False),
    ],
)
def test_background_means_a_haiku_model_id(model: str, background: bool) -> None:
    assert _facts(model).background is background


def test_request_facts_defaults() -> None:
    facts = RequestFacts(OPUS)
    assert (facts.tool_count, facts.has_images, facts.thinking, facts.input_tokens) == (0, False, False, 0)
    assert (dict(facts.headers), facts.key_id, facts.user_id, facts.group_ids) == ({}, None, None, frozenset())


# --- rule_matches: each condition alone ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conditions", "facts", "expected"),
    [
        # A rule without conditions matches everything.
        ({}, {}, True),
        ({}, {"tool_count": 40, "has_images": True, "thinking": True, "input_tokens": 10**6}, True),
        # min_tools / max_tools are inclusive.
        ({"min_tools": 3}, {"tool_count": 2}, False),
        ({"min_tools": 3}, {"tool_count": 3}, True),
        ({"min_tools": 3}, {"tool_count": 50}, True),
        ({"min_tools": 0}, {"tool_count": 0}, True),
        ({"max_tools": 2}, {"tool_count": 0}, True),
        ({"max_tools": 2}, {"tool_count": 2}, True),
        ({"max_tools": 2}, {"tool_count": 3}, False),
        ({"max_tools": 0}, {"tool_count": 0}, True),
        ({"max_tools": 0}, {"tool_count": 1}, False),
        ({"min_tools": 3, "max_tools": 15}, {"tool_count": 3}, True),
        ({"min_tools": 3, "max_tools": 15}, {"tool_count": 15}, True),
        ({"min_tools": 3, "max_tools": 15}, {"tool_count": 16}, False),
        # background: True = haiku ids, False = everything else.
        ({"background": True}, {"client_model": HAIKU}, True),
        ({"background": True}, {"client_model": OPUS}, False),
        ({"background": False}, {"client_model": OPUS}, True),
        ({"background": False}, {"client_model": HAIKU}, False),
        # thinking
        ({"thinking": True}, {"thinking": True}, True),
        ({"thinking": True}, {"thinking": False}, False),
        ({"thinking": False}, {"thinking": False}, True),
        ({"thinking": False}, {"thinking": True}, False),
        # min_input_tokens is inclusive.
        ({"min_input_tokens": 100_000}, {"input_tokens": 99_999}, False),
        ({"min_input_tokens": 100_000}, {"input_tokens": 100_000}, True),
        ({"min_input_tokens": 100_000}, {"input_tokens": 900_000}, True),
        # has_images
        ({"has_images": True}, {"has_images": True}, True),
        ({"has_images": True}, {"has_images": False}, False),
        ({"has_images": False}, {"has_images": False}, True),
        ({"has_images": False}, {"has_images": True}, False),
        # The requesting key, user and team.
        ({"key_id": 7}, {"key_id": 7}, True),
        ({"key_id": 7}, {"key_id": 8}, False),
        ({"key_id": 7}, {}, False),
        ({"user_id": 5}, {"user_id": 5}, True),
        ({"user_id": 5}, {"user_id": 6}, False),
        ({"user_id": 5}, {}, False),
        ({"group_id": 3}, {"group_ids": frozenset({1, 3})}, True),
        ({"group_id": 3}, {"group_ids": frozenset({1})}, False),
        ({"group_id": 3}, {}, False),
    ],
)
def test_each_rule_condition_alone(conditions: dict[str, Any], facts: dict[str, Any], expected: bool) -> None:
    model = facts.pop("client_model", OPUS)
    assert rule_matches(_rule(**conditions), _facts(model, **facts)) is expected


@pytest.mark.parametrize(
    ("pattern", "model", "expected"),
    [
        ("claude-*haiku*", HAIKU, True),
        ("claude-*haiku*", "claude-3-5-haiku-latest", True),
        ("claude-*haiku*", OPUS, False),
        ("claude-opus-*", OPUS, True),
        ("claude-opus-*", SONNET, False),
        ("claude-sonnet-5", SONNET, True),  # no wildcard: the whole id
        ("claude-sonnet-5", "claude-sonnet-5-1", False),
        ("claude-sonnet-?", SONNET, True),
        ("*", "anything-at-all", True),
        # Model ids are compared case-sensitively (fnmatchcase: the same on every OS).
        ("claude-*haiku*", "Claude-Haiku-4-5", False),
    ],
)
def test_rule_client_model_is_a_glob(pattern: str, model: str, expected: bool) -> None:
    assert rule_matches(_rule(client_model=pattern), _facts(model)) is expected


@pytest.mark.parametrize(
    ("header_name", "header_value", "headers", "expected"),
    [
        # Presence only.
        ("x-tenant", "", {"x-tenant": "acme"}, True),
        ("x-tenant", "", {"x-tenant": ""}, True),
        ("x-tenant", "", {}, False),
        ("x-tenant", "", {"x-other": "acme"}, False),
        # The rule's header name is matched case-insensitively (the facts carry lower-cased names).
        ("X-Tenant", "", {"x-tenant": "acme"}, True),
        ("X-GATEWAY-TENANT", "acme", {"x-gateway-tenant": "acme"}, True),
        # Value glob.
        ("x-tenant", "acme", {"x-tenant": "acme"}, True),
        ("x-tenant", "acme", {"x-tenant": "acme-eu"}, False),
        ("x-tenant", "acme-*", {"x-tenant": "acme-eu"}, True),
        ("x-tenant", "acme-*", {"x-tenant": "globex-eu"}, False),
        ("x-tenant", "acme-*", {}, False),
        ("x-tenant", "acme", {"x-tenant": ""}, False),
        ("x-tenant", "*", {"x-tenant": ""}, True),
        # Values are compared as sent.
        ("x-tenant", "acme", {"x-tenant": "ACME"}, False),
    ],
)
def test_rule_header_condition(header_name: str, header_value: str, headers: dict[str, str], expected: bool) -> None:
    rule = _rule(header_name=header_name, header_value=header_value)
    assert rule_matches(rule, _facts(headers=headers)) is expected


# --- rule_matches: conditions combined ----------------------------------------------------------------------------

FULL_RULE = _rule(
    min_tools=3,
    max_tools=15,
    client_model="claude-*haiku*",
    background=True,
    thinking=True,
    min_input_tokens=1000,
    has_images=True,
    header_name="X-Tenant",
    header_value="acme*",
    key_id=7,
    user_id=5,
    group_id=3,
)
FULL_FACTS: dict[str, Any] = {
    "client_model": HAIKU,
    "tool_count": 8,
    "has_images": True,
    "thinking": True,
    "input_tokens": 5000,
    "headers": {"x-tenant": "acme-eu"},
    "key_id": 7,
    "user_id": 5,
    "group_ids": frozenset({2, 3}),
}


def test_a_rule_matches_when_every_set_condition_holds() -> None:
    assert rule_matches(FULL_RULE, RequestFacts(**FULL_FACTS))


@pytest.mark.parametrize(
    "broken",
    [
        {"tool_count": 2},
        {"tool_count": 16},
        {"client_model": "haiku-claude"},  # background (haiku) but not the glob
        {"client_model": OPUS},  # neither the glob nor background
        {"thinking": False},
        {"input_tokens": 999},
        {"has_images": False},
        {"headers": {}},
        {"headers": {"x-tenant": "globex"}},
        {"key_id": None},
        {"user_id": 6},
        {"group_ids": frozenset({2})},
    ],
)
def test_a_rule_fails_when_any_one_condition_fails(broken: dict[str, Any]) -> None:
    assert not rule_matches(FULL_RULE, RequestFacts(**{**FULL_FACTS, **broken}))


def test_background_condition_alone_breaks_a_combined_rule() -> None:
    rule = _rule(client_model="claude-*", background=False, thinking=True)
    assert rule_matches(rule, _facts(SONNET, thinking=True))
    assert not rule_matches(rule, _facts(HAIKU, thinking=True))
    assert not rule_matches(rule, _facts(SONNET, thinking=False))


# --- mapping_matches ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("match_type", "pattern", "model", "expected"),
    [
        ("exact", SONNET, SONNET, True),
        ("exact", SONNET, "claude-sonnet-5-1", False),
        ("exact", "claude-*", SONNET, False),  # exact means exact: no glob
        ("exact", SONNET, "Claude-Sonnet-5", False),
        ("glob", "claude-*haiku*", HAIKU, True),
        ("glob", "claude-*haiku*", OPUS, False),
        ("glob", "claude-opus-?-?", OPUS, True),
        ("glob", "claude-*haiku*", "CLAUDE-HAIKU", False),
        ("any", "", "whatever-id", True),
        ("any", "", OPUS, True),
        ("any", "ignored", OPUS, True),
    ],
)
def test_mapping_pattern(match_type: str, pattern: str, model: str, expected: bool) -> None:
    assert mapping_matches(_mapping(pattern, _provider(1), match_type), _facts(model)) is expected


@pytest.mark.parametrize(
    ("scope", "facts", "expected"),
    [
        ({}, {}, True),
        ({}, {"key_id": 1, "user_id": 2, "group_ids": frozenset({3})}, True),
        ({"key_id": 1}, {"key_id": 1}, True),
        ({"key_id": 1}, {"key_id": 9}, False),
        ({"key_id": 1}, {}, False),
        ({"user_id": 2}, {"user_id": 2}, True),
        ({"user_id": 2}, {"user_id": 9}, False),
        ({"user_id": 2}, {}, False),
        ({"group_id": 3}, {"group_ids": frozenset({3, 4})}, True),
        ({"group_id": 3}, {"group_ids": frozenset({4})}, False),
        ({"group_id": 3}, {}, False),
    ],
)
def test_mapping_scope(scope: dict[str, Any], facts: dict[str, Any], expected: bool) -> None:
    mapping = _mapping("", _provider(1), "any", **scope)
    assert mapping_matches(mapping, _facts(**facts)) is expected


def test_a_scoped_mapping_still_needs_its_pattern() -> None:
    mapping = _mapping(SONNET, _provider(1), key_id=1)
    assert mapping_matches(mapping, _facts(SONNET, key_id=1))
    assert not mapping_matches(mapping, _facts(OPUS, key_id=1))


# --- rules in route_plan ------------------------------------------------------------------------------------------


def test_the_first_matching_rule_wins() -> None:
    a, b = _provider(1), _provider(2)
    tiers = (_tier("a", a), _tier("b", b))
    first = _rule("a", "to-a", min_tools=1)
    second = _rule("b", "to-b", max_tools=10)
    facts = _facts(tool_count=5)  # both rules match
    plan = route_plan(RoutingSnapshot((a, b), tiers, rules=(first, second)), facts)
    assert (plan.rule, plan.tier, _names(plan)) == ("to-a", "a", ["p1"])
    plan = route_plan(RoutingSnapshot((a, b), tiers, rules=(second, first)), facts)
    assert (plan.rule, plan.tier, _names(plan)) == ("to-b", "b", ["p2"])


def test_a_rule_that_does_not_match_is_skipped() -> None:
    a, b = _provider(1), _provider(2)
    snapshot = RoutingSnapshot(
        (a, b),
        (_tier("a", a), _tier("b", b)),
        rules=(_rule("a", "images", has_images=True), _rule("b", "rest")),
    )
    assert route_plan(snapshot, _facts()).rule == "rest"
    assert route_plan(snapshot, _facts(has_images=True)).rule == "images"


def test_a_disabled_rule_is_simply_absent_from_the_snapshot() -> None:
    a, b = _provider(1), _provider(2)
    tiers = (_tier("a", a),)
    enabled = RoutingSnapshot((b, a), tiers, rules=(_rule("a", "to-a"),))
    disabled = RoutingSnapshot((b, a), tiers, rules=())
    assert route_plan(enabled, _facts()) == RoutePlan((Route(a, OPUS, OPUS),), "to-a", "a", 3)
    assert route_plan(disabled, _facts()) == RoutePlan((Route(b, OPUS, OPUS), Route(a, OPUS, OPUS)), "default")


def test_a_rules_tier_is_its_fallback_chain_in_order() -> None:
    a, b, c = _provider(1), _provider(2, model_override="b-model"), _provider(3)
    tier = _tier("main", TargetConfig(c, "c-model"), b, TargetConfig(a), max_attempts=5)
    plan = route_plan(RoutingSnapshot((a, b, c), (tier,), rules=(_rule("main", "all"),)), _facts(SONNET))
    assert plan == RoutePlan(
        (Route(c, "c-model", SONNET), Route(b, "b-model", SONNET), Route(a, SONNET, SONNET)), "all", "main", 5
    )


def test_rules_win_over_mappings() -> None:
    a, b = _provider(1), _provider(2)
    snapshot = RoutingSnapshot(
        (a, b),
        (_tier("a", a),),
        mappings=(_mapping(OPUS, b),),
        rules=(_rule("a", "thinking", thinking=True),),
    )
    assert route_plan(snapshot, _facts(thinking=True)).rule == "thinking"
    assert route_plan(snapshot, _facts(thinking=False)).rule == f"mapping:{OPUS}"


def test_a_rule_naming_a_missing_tier_leaves_only_the_fallback() -> None:
    a, fallback = _provider(1), _provider(9)
    snapshot = RoutingSnapshot((a, fallback), rules=(_rule("gone", "r"),), fallback=(TargetConfig(fallback),))
    assert route_plan(snapshot, _facts()) == RoutePlan((Route(fallback, OPUS, OPUS),), "r", None, 3)


# --- the seed's hybrid routing: 0-2 tools local, 3-15 mid, 16+ heavy ----------------------------------------------

LOCAL = _provider(1, name="ollama", kind="ollama", model_override="qwen3-coder:30b")
MID = _provider(2, name="mid", kind="openai_chat", model_override="gpt-5-mini")
HEAVY = _provider(3, name="heavy", model_override="")


def _hybrid(light_max: int = 2, mid_max: int = 15, **snapshot: Any) -> RoutingSnapshot:
    return RoutingSnapshot(
        (LOCAL, MID, HEAVY),
        (
            _tier("local", LOCAL, order=10),
            _tier("mid", MID, order=20),
            _tier("heavy", HEAVY, order=30),
        ),
        rules=(
            _rule("local", "light", max_tools=light_max),
            _rule("mid", "medium", min_tools=light_max + 1, max_tools=mid_max),
            _rule("heavy", "heavy", min_tools=mid_max + 1),
        ),
        **snapshot,
    )


@pytest.mark.parametrize(
    ("tools", "rule", "tier", "route"),
    [
        (0, "light", "local", ("ollama", "qwen3-coder:30b")),
        (1, "light", "local", ("ollama", "qwen3-coder:30b")),
        (2, "light", "local", ("ollama", "qwen3-coder:30b")),
        (3, "medium", "mid", ("mid", "gpt-5-mini")),
        (15, "medium", "mid", ("mid", "gpt-5-mini")),
        (16, "heavy", "heavy", ("heavy", OPUS)),
        (80, "heavy", "heavy", ("heavy", OPUS)),
    ],
)
def test_hybrid_seed_shape(tools: int, rule: str, tier: str, route: tuple[str, str]) -> None:
    plan = route_plan(_hybrid(), _facts(tool_count=tools))
    assert (plan.rule, plan.tier, _chain(plan)) == (rule, tier, [route])


@pytest.mark.parametrize(("tools", "tier"), [(4, "local"), (5, "local"), (6, "mid"), (30, "mid"), (31, "heavy")])
def test_hybrid_thresholds_are_editable(tools: int, tier: str) -> None:
    assert route_plan(_hybrid(light_max=5, mid_max=30), _facts(tool_count=tools)).tier == tier


def test_claude_code_traits_beyond_the_seed() -> None:
    long_provider = _provider(4, name="long", context_window=1_000_000)
    tenant = _provider(5, name="tenant")
    base = _hybrid()
    snapshot = RoutingSnapshot(
        (*base.providers, long_provider, tenant),
        (*base.tiers, _tier("long", long_provider, order=40, long_context=True), _tier("tenant", tenant, order=50)),
        rules=(
            _rule("tenant", "tenant-acme", header_name="X-Gateway-Tenant", header_value="acme"),
            _rule("long", "long-context", min_input_tokens=150_000),
            _rule("local", "background", background=True),
            _rule("heavy", "thinking", thinking=True),
            _rule("mid", "images", has_images=True),
            _rule("heavy", "team-7", group_id=7),
            *base.rules,
        ),
    )
    cases = [
        (_facts(headers={"x-gateway-tenant": "acme"}, input_tokens=200_000), "tenant-acme", "tenant"),
        (_facts(input_tokens=200_000, tool_count=20), "long-context", "long"),
        (_facts(HAIKU, tool_count=20), "background", "local"),
        (_facts(thinking=True), "thinking", "heavy"),
        (_facts(has_images=True), "images", "mid"),
        (_facts(group_ids=frozenset({7})), "team-7", "heavy"),
        (_facts(headers={"x-gateway-tenant": "globex"}, tool_count=1), "light", "local"),
        (_facts(tool_count=9), "medium", "mid"),
    ]
    for facts, rule, tier in cases:
        plan = route_plan(snapshot, facts)
        assert (plan.rule, plan.tier) == (rule, tier), facts


# --- mappings -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mapping", "model", "label"),
    [
        (("exact", SONNET), SONNET, f"mapping:{SONNET}"),
        (("glob", "claude-*haiku*"), HAIKU, "mapping:claude-*haiku*"),
        (("any", ""), "some-arbitrary-id", "mapping:*"),
    ],
)
def test_a_mapping_gives_the_first_target(mapping: tuple[str, str], model: str, label: str) -> None:
    default, mapped = _provider(1), _provider(2)
    match_type, pattern = mapping
    snapshot = RoutingSnapshot((default, mapped), mappings=(_mapping(pattern, TargetConfig(mapped, "up"), match_type),))
    assert route_plan(snapshot, _facts(model)) == RoutePlan((Route(mapped, "up", model),), label, None, 3)


def test_a_mapping_that_does_not_match_leaves_the_default_chain() -> None:
    default, mapped = _provider(1), _provider(2)
    snapshot = RoutingSnapshot((default,), mappings=(_mapping("claude-*haiku*", mapped, "glob"),))
    assert route_plan(snapshot, _facts(OPUS)) == RoutePlan((Route(default, OPUS, OPUS),), "default")


SCOPES: dict[str, dict[str, int]] = {
    "key": {"key_id": 1},
    "user": {"user_id": 2},
    "group": {"group_id": 3},
    "global": {},
}
EVERYONE: dict[str, Any] = {"key_id": 1, "user_id": 2, "group_ids": frozenset({3})}


@pytest.mark.parametrize(
    ("present", "winner"),
    [
        (("key", "user", "group", "global"), "key"),
        (("user", "group", "global"), "user"),
        (("group", "global"), "group"),
        (("global",), "global"),
        (("global", "group", "user", "key"), "key"),  # snapshot order does not matter
        (("global", "group"), "group"),
    ],
)
def test_scoped_mappings_win_key_then_user_then_team_then_global(present: tuple[str, ...], winner: str) -> None:
    providers = {name: _provider(i, name=name) for i, name in enumerate(SCOPES, start=1)}
    # Priorities run against the scope order, to show scope is compared first.
    priority = {"key": 400, "user": 300, "group": 200, "global": 1}
    mappings = tuple(_mapping("", providers[name], "any", priority=priority[name], **SCOPES[name]) for name in present)
    snapshot = RoutingSnapshot(tuple(providers.values()), mappings=mappings)
    assert _names(route_plan(snapshot, _facts(**EVERYONE))) == [winner]


def test_a_mapping_scoped_to_someone_else_is_ignored() -> None:
    mine, theirs, everyone = _provider(1), _provider(2), _provider(3)
    snapshot = RoutingSnapshot(
        (mine, theirs, everyone),
        mappings=(
            _mapping(OPUS, theirs, key_id=99),
            _mapping(OPUS, theirs, user_id=99),
            _mapping(OPUS, theirs, group_id=99),
            _mapping(OPUS, everyone),
            _mapping(SONNET, mine, key_id=1),  # mine, but another model
        ),
    )
    assert _names(route_plan(snapshot, _facts(OPUS, **EVERYONE))) == ["p3"]


def test_within_a_scope_the_lower_priority_wins_then_snapshot_order() -> None:
    a, b, c = _provider(1), _provider(2), _provider(3)
    snapshot = RoutingSnapshot(
        (a, b, c),
        mappings=(
            _mapping("claude-*", a, "glob", priority=100),
            _mapping(OPUS, b, priority=10),
            _mapping("", c, "any", priority=10),
        ),
    )
    plan = route_plan(snapshot, _facts(OPUS))
    assert (_names(plan), plan.rule) == (["p2"], f"mapping:{OPUS}")
    # Only one mapping is used: the others are not appended to the chain.
    assert _names(route_plan(snapshot, _facts(SONNET))) == ["p3"]


def test_a_mappings_fallback_tier_is_appended() -> None:
    mapped, backup1, backup2 = _provider(1), _provider(2), _provider(3)
    tier = _tier("backup", backup1, TargetConfig(backup2, "b2-model"), order=5, max_attempts=4)
    snapshot = RoutingSnapshot(
        (mapped, backup1, backup2),
        (tier,),
        mappings=(_mapping(SONNET, TargetConfig(mapped, "m-model"), fallback_tier="backup"),),
    )
    plan = route_plan(snapshot, _facts(SONNET))
    assert plan == RoutePlan(
        (Route(mapped, "m-model", SONNET), Route(backup1, SONNET, SONNET), Route(backup2, "b2-model", SONNET)),
        f"mapping:{SONNET}",
        "backup",
        4,
    )


def test_a_mappings_missing_fallback_tier_leaves_just_its_target() -> None:
    mapped = _provider(1)
    snapshot = RoutingSnapshot((mapped,), mappings=(_mapping(SONNET, mapped, fallback_tier="deleted"),))
    assert route_plan(snapshot, _facts(SONNET)) == RoutePlan((Route(mapped, SONNET, SONNET),), f"mapping:{SONNET}")


def test_a_mapping_ignores_advertised_models() -> None:
    mapped = _provider(1, advertised_models=("something-else",))
    snapshot = RoutingSnapshot((mapped,), mappings=(_mapping(SONNET, mapped),))
    assert _names(route_plan(snapshot, _facts(SONNET))) == ["p1"]


@pytest.mark.parametrize(
    ("target_model", "override", "upstream"),
    [
        ("from-target", "from-override", "from-target"),
        ("from-target", "", "from-target"),
        ("", "from-override", "from-override"),
        ("", "", SONNET),
    ],
)
def test_upstream_model_is_the_targets_then_the_providers_override_then_the_clients(
    target_model: str, override: str, upstream: str
) -> None:
    provider = _provider(1, model_override=override)
    target = TargetConfig(provider, target_model)
    via_mapping = RoutingSnapshot((provider,), mappings=(_mapping(SONNET, target),))
    via_rule = RoutingSnapshot((provider,), (TierConfig("t", targets=(target,)),), rules=(_rule("t"),))
    for snapshot in (via_mapping, via_rule):
        assert route_plan(snapshot, _facts(SONNET)).routes == (Route(provider, upstream, SONNET),)


# --- the default chain --------------------------------------------------------------------------------------------


def test_default_chain_is_every_provider_by_priority_that_serves_the_model() -> None:
    first = _provider(1, model_override="override-1")
    only_haiku = _provider(2, advertised_models=(HAIKU,))
    serves_opus = _provider(3, advertised_models=(SONNET, OPUS))
    catch_all = _provider(4)
    snapshot = RoutingSnapshot((first, only_haiku, serves_opus, catch_all))
    plan = route_plan(snapshot, _facts(OPUS))
    assert plan == RoutePlan(
        (Route(first, "override-1", OPUS), Route(serves_opus, OPUS, OPUS), Route(catch_all, OPUS, OPUS)), "default"
    )
    assert (plan.tier, plan.max_attempts) == (None, 3)
    assert _names(route_plan(snapshot, _facts(HAIKU))) == ["p1", "p2", "p4"]


def test_no_providers_at_all() -> None:
    with pytest.raises(NoRouteError) as info:
        route_plan(RoutingSnapshot(()), _facts())
    assert str(info.value) == NO_PROVIDERS


def test_no_provider_serves_the_model() -> None:
    snapshot = RoutingSnapshot((_provider(1, advertised_models=(SONNET,)), _provider(2, advertised_models=(HAIKU,))))
    with pytest.raises(NoRouteError) as info:
        route_plan(snapshot, _facts(OPUS))
    assert str(info.value) == f"no provider serves model {OPUS!r}"


def test_a_rule_whose_tier_has_no_targets_and_no_fallback_has_no_route() -> None:
    a = _provider(1)
    snapshot = RoutingSnapshot((a,), (_tier("empty"),), rules=(_rule("empty"),))
    with pytest.raises(NoRouteError) as info:
        route_plan(snapshot, _facts(OPUS))
    assert str(info.value) == f"no provider serves model {OPUS!r}"


# --- FALLBACK_PROVIDER --------------------------------------------------------------------------------------------


def test_the_fallback_provider_is_appended_to_every_kind_of_chain() -> None:
    a, b, fallback = _provider(1), _provider(2), _provider(9, model_override="fb-model")
    fb = (TargetConfig(fallback),)
    by_rule = RoutingSnapshot((a, b, fallback), (_tier("t", a, b),), rules=(_rule("t"),), fallback=fb)
    by_mapping = RoutingSnapshot((a, fallback), mappings=(_mapping(OPUS, a),), fallback=fb)
    by_default = RoutingSnapshot((a, b), fallback=fb)
    assert _chain(route_plan(by_rule, _facts())) == [("p1", OPUS), ("p2", OPUS), ("p9", "fb-model")]
    assert _chain(route_plan(by_mapping, _facts())) == [("p1", OPUS), ("p9", "fb-model")]
    assert _chain(route_plan(by_default, _facts())) == [("p1", OPUS), ("p2", OPUS), ("p9", "fb-model")]


def test_the_fallback_provider_is_not_repeated() -> None:
    a, fallback = _provider(1), _provider(9)
    snapshot = RoutingSnapshot((fallback, a), fallback=(TargetConfig(fallback),))
    assert _names(route_plan(snapshot, _facts())) == ["p9", "p1"]


def test_the_same_target_twice_in_a_tier_is_tried_once_but_another_model_is_another_route() -> None:
    a = _provider(1)
    tier = _tier("t", a, TargetConfig(a, "other"), a, TargetConfig(a, "other"))
    snapshot = RoutingSnapshot((a,), (tier,), rules=(_rule("t"),), fallback=(TargetConfig(a),))
    assert _chain(route_plan(snapshot, _facts())) == [("p1", OPUS), ("p1", "other")]


def test_the_fallback_provider_serves_a_model_no_one_advertises() -> None:
    a, fallback = _provider(1, advertised_models=(SONNET,)), _provider(9, advertised_models=(SONNET,))
    snapshot = RoutingSnapshot((a, fallback), fallback=(TargetConfig(fallback),))
    assert route_plan(snapshot, _facts(OPUS)) == RoutePlan((Route(fallback, OPUS, OPUS),), "default")


# --- capability: tools and images ---------------------------------------------------------------------------------

TOOLLESS = _provider(1, name="toolless", supports_tools=False)
TEXT_ONLY = _provider(2, name="text-only", supports_images=False)
CAPABLE = _provider(3, name="capable")
BIG = _provider(4, name="big")


def _tiered(*tiers: TierConfig, fallback: tuple[TargetConfig, ...] = ()) -> RoutingSnapshot:
    return RoutingSnapshot((TOOLLESS, TEXT_ONLY, CAPABLE, BIG), tiers, rules=(_rule("light", "r"),), fallback=fallback)


def test_incapable_targets_are_removed_from_the_chain() -> None:
    snapshot = _tiered(_tier("light", TOOLLESS, TEXT_ONLY, CAPABLE, order=1))
    assert _names(route_plan(snapshot, _facts())) == ["toolless", "text-only", "capable"]
    assert _names(route_plan(snapshot, _facts(tool_count=1))) == ["text-only", "capable"]
    assert _names(route_plan(snapshot, _facts(has_images=True))) == ["toolless", "capable"]
    plan = route_plan(snapshot, _facts(tool_count=1, has_images=True))
    assert (_names(plan), plan.rule, plan.tier) == (["capable"], "r", "light")


def test_tools_on_a_tool_less_tier_move_to_the_next_heavier_tier() -> None:
    snapshot = _tiered(
        _tier("heavy", BIG, order=30, max_attempts=2),
        _tier("light", TOOLLESS, order=10, max_attempts=1),
        _tier("mid", CAPABLE, order=20, max_attempts=5),
    )
    assert route_plan(snapshot, _facts(tool_count=0)) == RoutePlan((Route(TOOLLESS, OPUS, OPUS),), "r", "light", 1)
    assert route_plan(snapshot, _facts(tool_count=1)) == RoutePlan((Route(CAPABLE, OPUS, OPUS),), "r>mid", "mid", 5)


def test_the_move_skips_heavier_tiers_that_cannot_take_the_request_either() -> None:
    also_toolless = _provider(5, name="also-toolless", supports_tools=False)
    snapshot = RoutingSnapshot(
        (TOOLLESS, also_toolless, TEXT_ONLY, BIG),
        (
            _tier("light", TOOLLESS, order=10),
            _tier("mid", also_toolless, order=20),
            _tier("heavy", TEXT_ONLY, also_toolless, BIG, order=30),
        ),
        rules=(_rule("light", "r"),),
    )
    plan = route_plan(snapshot, _facts(tool_count=3, has_images=True))
    assert (_names(plan), plan.rule, plan.tier) == (["big"], "r>heavy", "heavy")
    plan = route_plan(snapshot, _facts(tool_count=3))
    assert (_names(plan), plan.rule, plan.tier) == (["text-only", "big"], "r>heavy", "heavy")


def test_lighter_and_equal_tiers_are_not_a_way_out() -> None:
    snapshot = _tiered(
        _tier("lighter", CAPABLE, order=5),
        _tier("light", TOOLLESS, order=10),
        _tier("same", CAPABLE, order=10),
    )
    with pytest.raises(CapabilityError) as info:
        route_plan(snapshot, _facts(tool_count=2))
    assert str(info.value) == "no provider on this route accepts tools (route: r)"


def test_images_on_a_text_only_tier_move_to_the_next_tier() -> None:
    snapshot = _tiered(_tier("light", TEXT_ONLY, order=10), _tier("vision", CAPABLE, order=20))
    plan = route_plan(snapshot, _facts(has_images=True))
    assert (_names(plan), plan.rule, plan.tier) == (["capable"], "r>vision", "vision")


def test_images_with_no_capable_target_anywhere() -> None:
    snapshot = _tiered(_tier("light", TEXT_ONLY, order=10))
    with pytest.raises(CapabilityError) as info:
        route_plan(snapshot, _facts(has_images=True))
    assert str(info.value) == "no provider on this route accepts images (route: r)"


def test_without_a_tier_there_is_no_next_tier() -> None:
    """A mapping without a fallback tier and the default chain cannot move; the error names the route."""
    heavy = _tier("heavy", CAPABLE, order=99)
    by_mapping = RoutingSnapshot((TOOLLESS, CAPABLE), (heavy,), mappings=(_mapping(OPUS, TOOLLESS),))
    by_default = RoutingSnapshot((TOOLLESS,), (heavy,))
    with pytest.raises(CapabilityError, match=r"^no provider on this route accepts tools \(route: mapping:claude-"):
        route_plan(by_mapping, _facts(OPUS, tool_count=1))
    with pytest.raises(CapabilityError) as info:
        route_plan(by_default, _facts(OPUS, tool_count=1))
    assert str(info.value) == "no provider on this route accepts tools (route: default)"


def test_a_mappings_fallback_tier_can_move_to_a_heavier_tier() -> None:
    snapshot = RoutingSnapshot(
        (TOOLLESS, CAPABLE),
        (_tier("cheap", TOOLLESS, order=1), _tier("strong", CAPABLE, order=2, max_attempts=7)),
        mappings=(_mapping(HAIKU, TOOLLESS, fallback_tier="cheap"),),
    )
    plan = route_plan(snapshot, _facts(HAIKU, tool_count=4))
    assert plan == RoutePlan((Route(CAPABLE, HAIKU, HAIKU),), "mapping:claude-haiku-4-5-20251001>strong", "strong", 7)


def test_the_fallback_provider_follows_the_capable_targets_of_the_tier() -> None:
    snapshot = _tiered(
        _tier("light", TOOLLESS, TEXT_ONLY, order=10), _tier("mid", BIG, order=20), fallback=(TargetConfig(CAPABLE),)
    )
    plan = route_plan(snapshot, _facts(tool_count=1))
    assert (_names(plan), plan.rule, plan.tier) == (["text-only", "capable"], "r", "light")


def test_tools_on_a_tool_less_tier_move_to_the_next_tier_even_with_a_fallback_provider() -> None:
    snapshot = _tiered(
        _tier("light", TOOLLESS, order=10), _tier("mid", BIG, order=20), fallback=(TargetConfig(CAPABLE),)
    )
    plan = route_plan(snapshot, _facts(tool_count=1))
    assert (plan.rule, plan.tier) == ("r>mid", "mid")
    assert _names(plan) == ["big", "capable"]


def test_a_prompt_too_long_for_the_tier_goes_to_the_long_context_tier_even_with_a_fallback_provider() -> None:
    small = _provider(1, name="small", context_window=1000)
    long = _provider(2, name="long", context_window=10**6)
    fallback = _provider(9, name="fallback")
    snapshot = RoutingSnapshot(
        (small, long, fallback),
        (_tier("main", small, order=1), _tier("long", long, order=2, long_context=True)),
        rules=(_rule("main", "r"),),
        fallback=(TargetConfig(fallback),),
    )
    plan = route_plan(snapshot, _facts(input_tokens=5000))
    assert (plan.rule, plan.tier) == ("r>long", "long")
    assert _names(plan) == ["long", "fallback"]


def test_the_capability_error_names_what_is_missing() -> None:
    snapshot = _tiered(_tier("light", TEXT_ONLY, order=10))
    with pytest.raises(CapabilityError) as info:
        route_plan(snapshot, _facts(tool_count=3, has_images=True))
    assert "images" in str(info.value)


# --- context windows ----------------------------------------------------------------------------------------------


def test_targets_whose_window_is_too_small_are_dropped() -> None:
    small = _provider(1, name="small", context_window=100_000)
    large = _provider(2, name="large", context_window=200_000)
    unknown = _provider(3, name="unknown", context_window=None)
    snapshot = RoutingSnapshot((small, large, unknown), (_tier("t", small, large, unknown),), rules=(_rule("t"),))
    assert _names(route_plan(snapshot, _facts(input_tokens=100_000))) == ["small", "large", "unknown"]
    assert _names(route_plan(snapshot, _facts(input_tokens=100_001))) == ["large", "unknown"]
    plan = route_plan(snapshot, _facts(input_tokens=10**7))
    assert (_names(plan), plan.rule, plan.tier) == (["unknown"], "r", "t")


def test_a_prompt_too_long_for_the_chain_goes_to_the_long_context_tier() -> None:
    small = _provider(1, name="small", context_window=200_000)
    toolless_long = _provider(2, name="toolless-long", context_window=2_000_000, supports_tools=False)
    long1 = _provider(3, name="long-1m", context_window=1_000_000)
    long2 = _provider(4, name="long-2m", context_window=2_000_000)
    snapshot = RoutingSnapshot(
        (small, toolless_long, long1, long2),
        (
            _tier("main", small, order=10),
            _tier("long", toolless_long, long1, long2, order=90, long_context=True, max_attempts=2),
        ),
        rules=(_rule("main", "r"),),
    )
    assert route_plan(snapshot, _facts(input_tokens=200_000)).tier == "main"
    plan = route_plan(snapshot, _facts(input_tokens=300_000, tool_count=2))
    assert plan == RoutePlan((Route(long1, OPUS, OPUS), Route(long2, OPUS, OPUS)), "r>long", "long", 2)
    plan = route_plan(snapshot, _facts(input_tokens=1_500_000))
    assert (_names(plan), plan.rule) == (["toolless-long", "long-2m"], "r>long")


def test_long_context_tiers_are_tried_in_turn() -> None:
    small = _provider(1, name="small", context_window=1000)
    medium = _provider(2, name="medium", context_window=10_000)
    huge = _provider(3, name="huge", context_window=100_000)
    snapshot = RoutingSnapshot(
        (small, medium, huge),
        (
            _tier("main", small, order=1),
            _tier("not-long", huge, order=2),
            _tier("long-a", medium, order=3, long_context=True),
            _tier("long-b", huge, order=4, long_context=True),
        ),
        rules=(_rule("main", "r"),),
    )
    assert route_plan(snapshot, _facts(input_tokens=5000)).rule == "r>long-a"
    assert route_plan(snapshot, _facts(input_tokens=50_000)).rule == "r>long-b"
    with pytest.raises(PromptTooLongError):
        route_plan(snapshot, _facts(input_tokens=500_000))


def test_the_default_chain_also_moves_to_a_long_context_tier() -> None:
    small = _provider(1, name="small", context_window=1000)
    big = _provider(2, name="big", context_window=10**6)
    snapshot = RoutingSnapshot((small,), (_tier("long", big, long_context=True, max_attempts=9),))
    assert route_plan(snapshot, _facts(input_tokens=5000)) == RoutePlan(
        (Route(big, OPUS, OPUS),), "default>long", "long", 9
    )


def test_a_prompt_too_long_everywhere_is_refused_in_anthropics_words() -> None:
    a = _provider(1, context_window=128_000)
    b = _provider(2, context_window=200_000)
    c = _provider(3, context_window=1_000_000, supports_tools=False)  # incapable: not counted
    snapshot = RoutingSnapshot((a, b, c))
    with pytest.raises(PromptTooLongError) as info:
        route_plan(snapshot, _facts(input_tokens=208_310, tool_count=1))
    assert str(info.value) == "prompt is too long: 208310 tokens > 200000 maximum"
    assert (info.value.tokens, info.value.window) == (208_310, 200_000)
    assert isinstance(info.value, Exception)


def test_a_long_context_tier_that_cannot_take_the_request_does_not_help() -> None:
    small = _provider(1, context_window=1000)
    long_toolless = _provider(2, context_window=10**6, supports_tools=False)
    snapshot = RoutingSnapshot((small,), (_tier("long", long_toolless, long_context=True),))
    with pytest.raises(PromptTooLongError) as info:
        route_plan(snapshot, _facts(input_tokens=5000, tool_count=1))
    assert str(info.value) == "prompt is too long: 5000 tokens > 1000 maximum"


def test_prompt_too_long_reports_the_largest_window_tried() -> None:
    small = _provider(1, context_window=200_000)
    long = _provider(2, context_window=1_000_000)
    snapshot = RoutingSnapshot((small,), (_tier("long", long, long_context=True),))
    with pytest.raises(PromptTooLongError) as info:
        route_plan(snapshot, _facts(input_tokens=1_200_000))
    assert str(info.value) == "prompt is too long: 1200000 tokens > 1000000 maximum"


# --- RoutePlan ----------------------------------------------------------------------------------------------------


def test_route_plan_defaults_and_immutability() -> None:
    plan = RoutePlan((), "default")
    assert (plan.tier, plan.max_attempts) == (None, 3)
    with pytest.raises(AttributeError):
        plan.rule = "other"  # type: ignore[misc]


# --- property: route_plan only fails in the documented ways, and every route it returns can take the request -------

MODELS = (OPUS, SONNET, HAIKU, "gpt-oss:20b")
WINDOWS = st.one_of(st.none(), st.sampled_from((1000, 8000, 200_000, 1_000_000)))


@st.composite
def _snapshots_and_facts(draw: st.DrawFn) -> tuple[RoutingSnapshot, RequestFacts]:
    providers = tuple(
        _provider(
            i,
            supports_tools=draw(st.booleans()),
            supports_images=draw(st.booleans()),
            context_window=draw(WINDOWS),
            advertised_models=tuple(draw(st.lists(st.sampled_from(MODELS), max_size=2))),
            model_override=draw(st.sampled_from(("", "override"))),
        )
        for i in range(draw(st.integers(0, 4)))
    )
    target = st.builds(TargetConfig, st.sampled_from(providers), st.sampled_from(("", "up"))) if providers else None
    targets = st.lists(target, max_size=3).map(tuple) if target is not None else st.just(())
    tier_names = ("a", "b", "c", "d")
    tiers = tuple(
        TierConfig(
            name,
            order=draw(st.integers(0, 4)),
            long_context=draw(st.booleans()),
            max_attempts=draw(st.integers(1, 5)),
            targets=draw(targets),
        )
        for name in draw(st.lists(st.sampled_from(tier_names), unique=True, max_size=4))
    )
    rule = st.builds(
        RuleConfig,
        name=st.sampled_from(("r1", "r2", "r3")),
        tier=st.sampled_from(tier_names),
        min_tools=st.none() | st.integers(0, 20),
        max_tools=st.none() | st.integers(0, 20),
        client_model=st.sampled_from(("", "claude-*", "*haiku*", OPUS)),
        background=st.none() | st.booleans(),
        thinking=st.none() | st.booleans(),
        min_input_tokens=st.none() | st.integers(0, 300_000),
        has_images=st.none() | st.booleans(),
        header_name=st.sampled_from(("", "X-Tenant")),
        header_value=st.sampled_from(("", "acme*")),
        key_id=st.none() | st.integers(1, 2),
        user_id=st.none() | st.integers(1, 2),
        group_id=st.none() | st.integers(1, 2),
    )
    mappings: tuple[MappingConfig, ...] = ()
    if target is not None:
        mapping = st.builds(
            MappingConfig,
            match_type=st.sampled_from(("exact", "glob", "any")),
            pattern=st.sampled_from(("", OPUS, "claude-*", "*haiku*")),
            target=target,
            fallback_tier=st.none() | st.sampled_from(tier_names),
            key_id=st.none() | st.integers(1, 2),
            user_id=st.none() | st.integers(1, 2),
            group_id=st.none() | st.integers(1, 2),
            priority=st.integers(0, 3),
        )
        mappings = tuple(draw(st.lists(mapping, max_size=3)))
    fallback = (
        tuple(draw(st.lists(st.builds(TargetConfig, st.sampled_from(providers)), max_size=1)))
        if target is not None
        else ()
    )
    snapshot = RoutingSnapshot(providers, tiers, mappings, tuple(draw(st.lists(rule, max_size=3))), fallback)
    facts = RequestFacts(
        draw(st.sampled_from(MODELS)),
        tool_count=draw(st.integers(0, 20)),
        has_images=draw(st.booleans()),
        thinking=draw(st.booleans()),
        input_tokens=draw(st.integers(0, 2_000_000)),
        headers=draw(st.sampled_from(({}, {"x-tenant": "acme-eu"}, {"x-tenant": "globex"}))),
        key_id=draw(st.none() | st.integers(1, 2)),
        user_id=draw(st.none() | st.integers(1, 2)),
        group_ids=frozenset(draw(st.lists(st.integers(1, 2), max_size=2))),
    )
    return snapshot, facts


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_snapshots_and_facts())
def test_route_plan_fails_only_as_documented_and_returns_only_capable_fitting_routes(
    case: tuple[RoutingSnapshot, RequestFacts],
) -> None:
    snapshot, facts = case
    try:
        plan = route_plan(snapshot, facts)
    except NoRouteError as exc:
        assert str(exc) in (NO_PROVIDERS, f"no provider serves model {facts.client_model!r}")
        assert snapshot.providers or str(exc) == NO_PROVIDERS
        return
    except CapabilityError as exc:
        assert str(exc).startswith("no provider on this route accepts ")
        return
    except PromptTooLongError as exc:
        assert exc.tokens == facts.input_tokens
        assert exc.tokens > exc.window
        assert str(exc) == f"prompt is too long: {exc.tokens} tokens > {exc.window} maximum"
        return
    assert plan.routes
    for route in plan.routes:
        provider = route.provider
        assert not facts.tool_count or provider.supports_tools
        assert not facts.has_images or provider.supports_images
        assert provider.context_window is None or facts.input_tokens <= provider.context_window
        assert route.client_model == facts.client_model
        assert route.upstream_model in ("up", provider.model_override or facts.client_model)
    tier = snapshot.tier(plan.tier)
    if plan.tier is None:
        assert plan.max_attempts == 3
    else:
        assert tier is not None
        assert plan.max_attempts == tier.max_attempts
    assert plan.rule
