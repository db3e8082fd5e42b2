"""The routing snapshot and pure route selection."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from providers.routing import DEFAULT_CLIENT_MODELS, NoRouteError, ProviderConfig, Route, RoutingSnapshot, route_select


def _provider(id: int, **changes: Any) -> ProviderConfig:
    fields: dict[str, Any] = {
        "id": id,
        "name": f"p{id}",
        "kind": "anthropic",
        "base_url": f"https://p{id}.example",
        "credential": f"secret-{id}",
    }
    return ProviderConfig(**{**fields, **changes})


def test_the_first_provider_by_priority_wins() -> None:
    first, second = _provider(1), _provider(2)
    route = route_select(RoutingSnapshot((first, second)), client_model="claude-opus-5-5")
    assert route == Route(first, "claude-opus-5-5", "claude-opus-5-5")


def test_providers_that_advertise_other_models_are_skipped() -> None:
    haiku = _provider(1, advertised_models=("claude-haiku-4-5-20251001",))
    catch_all = _provider(2)
    snapshot = RoutingSnapshot((haiku, catch_all))
    assert route_select(snapshot, client_model="claude-haiku-4-5-20251001").provider is haiku
    assert route_select(snapshot, client_model="claude-opus-5-5").provider is catch_all
    assert route_select(snapshot, client_model="gpt-oss:20b").provider is catch_all


def test_a_provider_that_advertises_the_model_wins_over_a_later_one() -> None:
    local = _provider(1, advertised_models=("gpt-oss:20b", "qwen3:8b"))
    other = _provider(2, advertised_models=("qwen3:8b",))
    snapshot = RoutingSnapshot((local, other))
    assert route_select(snapshot, client_model="qwen3:8b").provider is local


def test_model_override_changes_only_the_upstream_model() -> None:
    ollama = _provider(1, kind="ollama", model_override="qwen3-coder:30b")
    route = route_select(RoutingSnapshot((ollama,)), client_model="claude-opus-4-8")
    assert route.upstream_model == "qwen3-coder:30b"
    assert route.client_model == "claude-opus-4-8"
    assert route.provider is ollama


def test_model_override_applies_after_the_advertised_filter() -> None:
    skipped = _provider(1, advertised_models=("claude-sonnet-5",), model_override="never")
    chosen = _provider(2, model_override="gpt-5")
    route = route_select(RoutingSnapshot((skipped, chosen)), client_model="claude-opus-5-5")
    assert (route.provider, route.upstream_model, route.client_model) == (chosen, "gpt-5", "claude-opus-5-5")


def test_no_providers_at_all() -> None:
    with pytest.raises(NoRouteError) as info:
        route_select(RoutingSnapshot(()), client_model="claude-opus-5-5")
    assert str(info.value) == (
        "no provider is configured: add one in admin or set MODEL_PROVIDER (see docs/providers.md)"
    )


def test_no_provider_serves_the_model() -> None:
    snapshot = RoutingSnapshot((_provider(1, advertised_models=("a",)), _provider(2, advertised_models=("b",))))
    with pytest.raises(NoRouteError) as info:
        route_select(snapshot, client_model="claude-opus-5-5")
    assert str(info.value) == "no provider serves model 'claude-opus-5-5'"


def test_models_of_providers_that_name_none_are_claude_codes_defaults() -> None:
    assert RoutingSnapshot((_provider(1),)).models() == list(DEFAULT_CLIENT_MODELS)
    assert DEFAULT_CLIENT_MODELS == (
        "claude-opus-5-5",
        "claude-opus-4-8",
        "claude-sonnet-5",
        "claude-haiku-4-5-20251001",
    )


def test_models_are_in_priority_order_without_duplicates() -> None:
    snapshot = RoutingSnapshot(
        (
            _provider(1, advertised_models=("qwen3:8b", "claude-sonnet-5", "qwen3:8b")),
            _provider(2),
            _provider(3, advertised_models=("gpt-oss:20b", "claude-opus-5-5")),
        )
    )
    assert snapshot.models() == [
        "qwen3:8b",
        "claude-sonnet-5",
        "claude-opus-5-5",
        "claude-opus-4-8",
        "claude-haiku-4-5-20251001",
        "gpt-oss:20b",
    ]


def test_models_of_an_empty_snapshot() -> None:
    assert RoutingSnapshot(()).models() == []


def test_snapshot_values_are_frozen_and_hide_the_credential() -> None:
    provider = _provider(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        provider.name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        RoutingSnapshot(()).providers = (provider,)  # type: ignore[misc]
    assert "secret-1" not in repr(provider)
    assert "secret-1" not in repr(route_select(RoutingSnapshot((provider,)), client_model="m"))


def test_provider_defaults() -> None:
    provider = _provider(1)
    assert (provider.auth_style, provider.api_version, provider.model_override) == ("x-api-key", "2023-06-01", "")
    assert (provider.advertised_models, provider.supports_count_tokens) == ((), True)
    assert (provider.connect_timeout, provider.read_timeout) == (10.0, 600.0)
