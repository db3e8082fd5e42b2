"""Providers seeded from Lynkr's environment names, re-synced at every start."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from providers.envseed import provider_env_specs
from providers.models import Provider, ProviderSource
from providers.selectors import routing_snapshot_build
from providers.services import provider_sync_from_env

LYNKR_ENV = {
    "MODEL_PROVIDER": "azure-anthropic",
    "AZURE_ANTHROPIC_ENDPOINT": "https://res.services.ai.azure.com/anthropic/v1/messages",
    "AZURE_ANTHROPIC_VERSION": "2023-06-01",
    "MODEL_DEFAULT": "claude-sonnet-4-5",
}


def test_specs_from_a_lynkr_env() -> None:
    [spec] = provider_env_specs(LYNKR_ENV)
    assert spec["name"] == "azure-anthropic"
    assert spec["base_url"] == LYNKR_ENV["AZURE_ANTHROPIC_ENDPOINT"]
    assert spec["api_key_env"] == "AZURE_ANTHROPIC_API_KEY"  # the secret itself is not copied into the DB
    assert spec["model_override"] == "claude-sonnet-4-5"
    assert provider_env_specs({}) == []


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"MODEL_PROVIDER": "skynet"}, "MODEL_PROVIDER='skynet' is invalid"),
        ({"MODEL_PROVIDER": "azure-anthropic"}, "needs its variables (AZURE_ANTHROPIC_ENDPOINT)"),
        ({"AZURE_ANTHROPIC_ENDPOINT": "ftp://x"}, "expected an http(s) URL"),
    ],
)
def test_bad_env_fails_clearly(values: dict[str, str], fragment: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        provider_env_specs(values)


def test_recognised_but_unsupported_provider_is_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    assert provider_env_specs({"MODEL_PROVIDER": "bedrock"}) == []
    assert "bedrock" in caplog.text


@pytest.mark.django_db
def test_sync_creates_updates_and_disables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_ANTHROPIC_API_KEY", "the-upstream-key")
    assert provider_sync_from_env(values=LYNKR_ENV) == ["azure-anthropic"]
    row = Provider.objects.get(name="azure-anthropic")
    assert row.source == ProviderSource.ENV and row.enabled and row.api_key == ""
    [config] = routing_snapshot_build().providers
    assert config.credential == "the-upstream-key"
    assert "the-upstream-key" not in repr(config)

    provider_sync_from_env(values={**LYNKR_ENV, "AZURE_ANTHROPIC_ENDPOINT": "https://other/anthropic"})
    assert Provider.objects.get(name="azure-anthropic").base_url == "https://other/anthropic"
    assert Provider.objects.count() == 1

    provider_sync_from_env(values={})  # the variables are gone: keep the row (history), but disable it
    assert not Provider.objects.get(name="azure-anthropic").enabled
    assert routing_snapshot_build().providers == ()


@pytest.mark.django_db
def test_admin_provider_with_same_name_is_left_alone() -> None:
    Provider.objects.create(name="azure-anthropic", base_url="https://mine", source=ProviderSource.ADMIN)
    assert provider_sync_from_env(values=LYNKR_ENV) == []
    assert Provider.objects.get(name="azure-anthropic").base_url == "https://mine"
