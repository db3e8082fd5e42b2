"""Admin for routing: test connection (a real request to a loopback upstream), reset breaker, list views;
and Lynkr's hybrid routing seeded from the environment."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User
from django.test import Client

from gateway.breakers import breaker_store
from providers.models import ModelMapping, Provider, RouteTier, RoutingRule, TierTarget
from providers.services import routing_sync_hybrid_from_env
from tests.mocks.anthropic_upstream import MockAnthropicUpstream
from tests.services import free_port

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def staff(client: Client) -> Client:
    User.objects.create_superuser(username="boss", password="x" * 16)
    client.login(username="boss", password="x" * 16)
    return client


@pytest.fixture(autouse=True)
def _fresh_breakers() -> Iterator[None]:
    breaker_store.cache_clear()
    yield
    breaker_store.cache_clear()


def test_test_connection_action_reports_a_real_answer(staff: Client) -> None:
    with MockAnthropicUpstream() as upstream:
        good = Provider.objects.create(name="good", base_url=upstream.url, api_key="k", model_override="m1")
        bad = Provider.objects.create(name="bad", base_url=f"http://127.0.0.1:{free_port()}", connect_timeout=2)
        response = staff.post(
            "/admin/providers/provider/",
            {"action": "test_connection", "_selected_action": [good.pk, bad.pk]},
            follow=True,
        )
        page = response.content.decode()
        assert "good: ok in" in page.lower() and "Hello from mock" in page
        assert "bad: failed" in page.lower() and "cannot reach provider" in page
        assert upstream.messages_requests[-1].body["model"] == "m1"


def test_reset_breaker_action(staff: Client) -> None:
    provider = Provider.objects.create(name="flaky", base_url="http://127.0.0.1:1")
    for _ in range(5):
        async_to_sync(breaker_store().apply)(provider.pk, "failure")
    assert "open" in staff.get("/admin/providers/provider/").content.decode()
    staff.post("/admin/providers/provider/", {"action": "reset_breaker", "_selected_action": [provider.pk]})
    assert async_to_sync(breaker_store().apply)(provider.pk, "check").state == "closed"


def test_routing_admin_pages_render(staff: Client) -> None:
    provider = Provider.objects.create(name="p1", base_url="http://127.0.0.1:1")
    tier = RouteTier.objects.create(name="mid", order=20)
    TierTarget.objects.create(tier=tier, provider=provider, upstream_model="gpt-mock")
    RoutingRule.objects.create(name="tools", tier=tier, min_tools=3, max_tools=15, header_name="x-tenant")
    ModelMapping.objects.create(match_type="glob", pattern="claude-*haiku*", provider=provider)
    assert "p1:gpt-mock" in staff.get("/admin/providers/routetier/").content.decode()
    assert "tools 3..15" in staff.get("/admin/providers/routingrule/").content.decode()
    assert "claude-*haiku*" in staff.get("/admin/providers/modelmapping/").content.decode()
    assert staff.get(f"/admin/providers/provider/{provider.pk}/change/").status_code == 200


def test_rule_validation_explains_itself(staff: Client) -> None:
    tier = RouteTier.objects.create(name="t")
    response = staff.post(
        "/admin/providers/routingrule/add/",
        {"name": "r", "order": 1, "enabled": "on", "tier": tier.pk, "min_tools": 5, "max_tools": 2,
         "background": "unknown", "thinking": "unknown", "has_images": "unknown"},
    )  # fmt: skip
    assert "Must be at least min_tools." in response.content.decode()


def test_hybrid_routing_from_env() -> None:
    ollama = Provider.objects.create(name="ollama", kind="ollama", base_url="http://127.0.0.1:11434")
    openrouter = Provider.objects.create(name="openrouter", kind="openai_chat", base_url="https://o.example")
    databricks = Provider.objects.create(name="databricks", kind="openai_chat", base_url="https://d.example")
    created = routing_sync_hybrid_from_env(
        prefer_ollama=True, ollama_max_tools=3, mid_max_tools=15, fallback_provider="databricks"
    )
    assert created == ["hybrid-local", "hybrid-mid", "hybrid-heavy"]
    rules = {r.name: r for r in RoutingRule.objects.all()}
    assert rules["hybrid-local"].max_tools == 2 and rules["hybrid-mid"].max_tools == 15
    assert rules["hybrid-heavy"].max_tools is None
    chains = {t.name: [x.provider for x in t.targets.all()] for t in RouteTier.objects.all()}
    assert chains == {"hybrid-local": [ollama], "hybrid-mid": [openrouter], "hybrid-heavy": [databricks]}
    # Re-synced, not duplicated; switched off when PREFER_OLLAMA goes away.
    routing_sync_hybrid_from_env(prefer_ollama=True, ollama_max_tools=3, mid_max_tools=15, fallback_provider="x")
    assert RouteTier.objects.count() == 3
    assert [x.provider for x in RouteTier.objects.get(name="hybrid-heavy").targets.all()] == [openrouter]
    assert (
        routing_sync_hybrid_from_env(prefer_ollama=False, ollama_max_tools=3, mid_max_tools=15, fallback_provider="x")
        == []
    )
    assert not RouteTier.objects.exists() and not RoutingRule.objects.exists()
