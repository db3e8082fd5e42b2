"""Provider, mapping and routing-rule admin forms: validation that says what to change."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from providers.admin import ModelMappingForm, ProviderForm, RoutingRuleForm
from providers.models import ModelMapping, Provider, RouteTier

pytestmark = pytest.mark.django_db


def _provider(**fields: Any) -> dict[str, Any]:
    data = {
        "name": "up", "kind": "anthropic", "base_url": "https://api.example.test", "api_key": "", "api_key_env": "",
        "auth_style": "x-api-key", "api_version": "2023-06-01", "model_override": "", "advertised_models": "[]",
        "options": "{}", "enabled": "on", "priority": "100", "supports_tools": "on", "supports_images": "on",
        "supports_count_tokens": "on",
    }  # fmt: skip
    data.update(fields)
    return data


@pytest.mark.parametrize(
    ("base_url", "message"),
    [
        ("ftp://files.example.test", "Enter an http:// or https:// URL with a host"),
        ("localhost:11434", "Enter an http:// or https:// URL with a host"),
        ("https://user:pw@api.example.test", "Remove the user:password@ part"),
    ],
)
def test_provider_base_url_must_be_http(base_url: str, message: str) -> None:
    form = ProviderForm(_provider(base_url=base_url))
    assert not form.is_valid()
    assert list(form.errors) == ["base_url"] and len(form.errors["base_url"]) == 1
    assert form.errors["base_url"][0].startswith(message), form.errors


def test_provider_base_url_is_trimmed_and_single_label_hosts_are_fine() -> None:
    form = ProviderForm(_provider(base_url="  http://ollama:11434 "))
    assert form.is_valid(), form.errors
    assert form.save().base_url == "http://ollama:11434"


def test_switching_to_an_environment_variable_drops_the_stored_credential() -> None:
    row = Provider.objects.create(name="up", base_url="https://a", api_key="sk-stored")
    both = ProviderForm(_provider(api_key="sk-new", api_key_env="UP_KEY"), instance=row)
    assert not both.is_valid()
    assert both.errors["api_key_env"] == [
        "Give the credential either here or in the API key field, not both: clear one of them."
    ]
    switched = ProviderForm(_provider(api_key_env="UP_KEY"), instance=Provider.objects.get(pk=row.pk))
    assert switched.is_valid(), switched.errors
    saved = switched.save()
    assert (saved.api_key, saved.api_key_env) == ("", "UP_KEY")


def _mapping(provider: Provider, **fields: Any) -> dict[str, Any]:
    return {"match_type": "exact", "pattern": "", "provider": provider.pk, "priority": "100", "enabled": "on", **fields}


@pytest.mark.parametrize(
    ("match_type", "pattern", "message"),
    [
        ("exact", "claude-*", "'claude-*' contains *, ? or [, which an exact id matches only literally"),
        ("glob", "claude-sonnet-5", "'claude-sonnet-5' has no *, ? or [...], so it matches only itself"),
        ("glob", "claude-[", "Close the '[' of the character class"),
        ("exact", "", "Give the client model id to match"),
        ("any", "claude-*", "'any model' matches every model and ignores the pattern"),
        ("exact", "claude sonnet", "Remove the spaces"),
    ],
)
def test_mapping_pattern_is_checked(match_type: str, pattern: str, message: str) -> None:
    provider = Provider.objects.create(name="up", base_url="https://a")
    form = ModelMappingForm(_mapping(provider, match_type=match_type, pattern=pattern))
    assert not form.is_valid()
    assert list(form.errors) == ["pattern"] and len(form.errors["pattern"]) == 1, form.errors
    assert form.errors["pattern"][0].startswith(message), form.errors


def test_mapping_scoped_to_one_subject() -> None:
    provider = Provider.objects.create(name="up", base_url="https://a")
    user, team = User.objects.create_user(username="dev"), Group.objects.create(name="t")
    form = ModelMappingForm(_mapping(provider, pattern="claude-sonnet-5", user=user.pk, group=team.pk))
    assert not form.is_valid()
    assert form.errors["__all__"] == [
        "Scope a mapping to one API key, one user or one team (or none: everyone), not several."
    ]
    ok = ModelMappingForm(_mapping(provider, match_type="glob", pattern="claude-*haiku*", group=team.pk))
    assert ok.is_valid(), ok.errors


def test_mapping_inline_on_the_provider_page_explains(client: Client) -> None:
    User.objects.create_superuser(username="boss", password="x" * 16)
    client.login(username="boss", password="x" * 16)
    row = Provider.objects.create(name="up", base_url="https://api.example.test")
    data = _provider(name="up")
    data.update({
        "mappings-TOTAL_FORMS": "1", "mappings-INITIAL_FORMS": "0", "mappings-0-match_type": "exact",
        "mappings-0-pattern": "claude-*", "mappings-0-priority": "100", "mappings-0-enabled": "on",
    })  # fmt: skip
    response = client.post(f"/admin/providers/provider/{row.pk}/change/", data)
    assert response.status_code == 200
    assert "choose &#x27;glob pattern&#x27;, or remove them" in response.content.decode()
    assert not ModelMapping.objects.exists()
    data["mappings-0-match_type"] = "glob"
    assert client.post(f"/admin/providers/provider/{row.pk}/change/", data).status_code == 302
    assert ModelMapping.objects.get().pattern == "claude-*"


def test_routing_rule_globs_are_checked() -> None:
    tier = RouteTier.objects.create(name="light")
    form = RoutingRuleForm(
        {"name": "r", "order": "1", "enabled": "on", "tier": tier.pk, "client_model": "claude-[", "header_value": ""}
    )
    assert not form.is_valid()
    assert form.errors["client_model"][0].startswith("Close the '['")
