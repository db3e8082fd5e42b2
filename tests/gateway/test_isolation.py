"""Tenant isolation: user A's key can neither read nor affect user B's sessions, usage, budgets or limits."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.test import AsyncClient, Client

from gateway.accounting import usage_buffer
from gateway.metering import usage_flush
from gateway.models import ApiKey, Budget, BudgetUsage, PriceEntry, RateLimit, Session, Turn, UsageRecord
from gateway.response_cache import response_cache
from gateway.services import apikey_create
from providers.models import Provider
from tests.mocks.anthropic_upstream import MockAnthropicUpstream

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = {"model": "claude-sonnet-5", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}


def _discard() -> None:
    usage_buffer.clear()


@pytest.fixture(autouse=True)
def _isolated(settings: Any) -> Iterator[None]:
    settings.REDIS_URL = ""
    settings.LYNKR_USAGE_FLUSH_INTERVAL = 3600
    _discard()
    PriceEntry.objects.all().delete()
    yield
    _discard()


@dataclass(frozen=True)
class Tenant:
    user: User
    key: str
    key_id: int


def _tenant(name: str) -> Tenant:
    user = User.objects.create_user(username=name, password="x" * 12)
    issued = apikey_create(user=user)
    return Tenant(user, issued.secret, ApiKey.objects.get(prefix=issued.prefix).pk)


@pytest.fixture
def alice() -> Tenant:
    return _tenant("alice")


@pytest.fixture
def bob() -> Tenant:
    return _tenant("bob")


@pytest.fixture
def provider(upstream: MockAnthropicUpstream) -> Provider:
    return Provider.objects.create(name="up", kind="anthropic", base_url=upstream.url, model_override="upstream-model")


async def post(tenant: Tenant, body: Any, **headers: str) -> Any:
    return await AsyncClient().post(
        "/v1/messages?beta=true",
        orjson.dumps(body),
        content_type="application/json",
        headers={"x-api-key": tenant.key, **headers},
    )


@sync_to_async
def sessions_of(tenant: Tenant) -> list[Session]:
    return list(Session.objects.filter(user=tenant.user))


@sync_to_async
def records_of(tenant: Tenant, kind: str = "request") -> list[UsageRecord]:
    return list(UsageRecord.objects.filter(user=tenant.user, kind=kind))


# --- sessions ---------------------------------------------------------------------------------------------------------


async def test_the_same_session_id_used_by_two_users_makes_two_sessions(
    alice: Tenant, bob: Tenant, provider: Provider
) -> None:
    header = {"x-claude-code-session-id": "0f3c-shared-uuid"}
    long = [
        {"role": "user", "content": "alice's secret plan"},
        {"role": "assistant", "content": "noted"},
        {"role": "user", "content": "go on"},
    ]
    assert (await post(alice, {**HELLO, "messages": long}, **header)).status_code == 200
    await usage_flush()
    assert (await post(bob, HELLO, **header)).status_code == 200
    await usage_flush()
    (a,), (b,) = await sessions_of(alice), await sessions_of(bob)
    assert a.pk != b.pk and a.external_id == b.external_id == "0f3c-shared-uuid"
    assert (a.api_key_id, b.api_key_id) == (alice.key_id, bob.key_id)
    assert a.requests == 1 and b.requests == 1
    # Bob's turn is counted from Bob's own (empty) history, not Alice's three messages.
    bob_turn = await sync_to_async(Turn.objects.get)(session=b)
    assert bob_turn.new_messages == HELLO["messages"]
    alice_turns = await sync_to_async(list)(Turn.objects.filter(session=a))
    assert len(alice_turns) == 1 and alice_turns[0].new_messages == long
    assert all(r.session_id == a.pk for r in await records_of(alice))
    assert all(r.session_id == b.pk for r in await records_of(bob))


async def test_a_client_supplied_user_id_never_attributes_usage_to_someone_else(
    alice: Tenant, bob: Tenant, provider: Provider
) -> None:
    claims = orjson.dumps({"session_id": "s", "user_id": bob.user.pk, "account_uuid": str(bob.user.pk)}).decode()
    await post(alice, {**HELLO, "metadata": {"user_id": claims}})
    await usage_flush()
    assert len(await records_of(alice)) == 1 and await records_of(bob) == []
    assert await sessions_of(bob) == []
    (session,) = await sessions_of(alice)
    assert session.external_id == "s"


async def test_a_users_own_keys_share_their_sessions(alice: Tenant, provider: Provider) -> None:
    laptop = Tenant(alice.user, (await sync_to_async(apikey_create)(user=alice.user)).secret, 0)
    header = {"x-claude-code-session-id": "mine"}
    await post(alice, HELLO, **header)
    await post(laptop, HELLO, **header)
    await usage_flush()
    (session,) = await sessions_of(alice)
    assert session.requests == 2


# --- budgets and rate limits ------------------------------------------------------------------------------------------


async def test_bobs_exhausted_budget_does_not_block_alice(alice: Tenant, bob: Tenant, provider: Provider) -> None:
    await sync_to_async(Budget.objects.create)(name="bob-user", user=bob.user, limit_tokens=1)
    bob_key = await sync_to_async(ApiKey.objects.get)(pk=bob.key_id)
    await sync_to_async(Budget.objects.create)(name="bob-key", api_key=bob_key, limit_usd=Decimal("0.0001"))
    await sync_to_async(Budget.objects.create)(name="alice", user=alice.user, limit_tokens=10**9)
    refused = await post(bob, HELLO)
    assert refused.status_code == 429 and "bob-user" in orjson.loads(refused.content)["error"]["message"]
    for _ in range(3):
        response = await post(alice, HELLO)
        assert response.status_code == 200
        assert "bob" not in response.headers.get("x-lynkr-budget-warning", "")
    await usage_flush()
    # Alice's spend lands on Alice's budget only; Bob's rows never moved.
    rows = await sync_to_async(list)(BudgetUsage.objects.select_related("budget"))
    by_name = {row.budget.name: row for row in rows}
    assert by_name["alice"].spent_tokens > 0
    assert all(
        by_name[name].spent_tokens == 0 and by_name[name].reserved_tokens == 0
        for name in ("bob-user", "bob-key")
        if name in by_name
    )


async def test_bobs_warning_is_not_shown_to_alice(alice: Tenant, bob: Tenant, provider: Provider) -> None:
    await sync_to_async(Budget.objects.create)(
        name="bob-watch", user=bob.user, limit_tokens=1000, soft_threshold=Decimal("0.01")
    )
    assert "x-lynkr-budget-warning" in (await post(bob, HELLO)).headers
    assert "x-lynkr-budget-warning" not in (await post(alice, HELLO)).headers


async def test_bobs_rate_limit_does_not_block_alice(alice: Tenant, bob: Tenant, provider: Provider) -> None:
    await sync_to_async(RateLimit.objects.create)(user=bob.user, requests_per_minute=1)
    assert (await post(bob, HELLO)).status_code == 200
    assert (await post(bob, HELLO)).status_code == 429
    for _ in range(3):
        response = await post(alice, HELLO)
        assert response.status_code == 200
        assert "anthropic-ratelimit-requests-limit" not in response.headers  # Bob's limits are not Alice's


# --- the /v1 surface --------------------------------------------------------------------------------------------------


async def test_models_list_works_for_both_users(alice: Tenant, bob: Tenant, upstream: MockAnthropicUpstream) -> None:
    await sync_to_async(Provider.objects.create)(
        name="listed", kind="anthropic", base_url=upstream.url, advertised_models=["model-a", "model-b"]
    )
    for tenant in (alice, bob):
        response = await AsyncClient().get("/v1/models", headers={"x-api-key": tenant.key})
        assert response.status_code == 200
        assert [m["id"] for m in orjson.loads(response.content)["data"]] == ["model-a", "model-b"]
        one = await AsyncClient().get("/v1/models/model-a", headers={"x-api-key": tenant.key})
        assert one.status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/v1/usage",
        "/v1/usage/{bob_request}",
        "/v1/sessions",
        "/v1/sessions/{bob_session}",
        "/v1/sessions/{bob_session}/turns",
        "/v1/turns",
        "/v1/budgets",
        "/v1/rate_limits",
        "/v1/keys",
        "/v1/users/{bob_id}",
        "/v1/organizations/usage_report/messages",
        "/v1/organizations/cost_report",
        "/v1/messages/{bob_request}",
    ],
)
async def test_no_v1_route_exposes_another_users_data(
    path: str, alice: Tenant, bob: Tenant, provider: Provider
) -> None:
    answer = await post(bob, HELLO, **{"x-claude-code-session-id": "bob-session"})
    await usage_flush()
    url = path.format(bob_request=answer.headers["request-id"], bob_session="bob-session", bob_id=bob.user.pk)
    for method in ("get", "post"):
        response = await getattr(AsyncClient(), method)(url, headers={"x-api-key": alice.key})
        assert response.status_code in (404, 405), (method, url, response.status_code)
        assert response["content-type"].startswith("application/json")
        body = orjson.loads(response.content)
        assert body["type"] == "error" and set(body) == {"type", "error", "request_id"}
        assert "Hello from mock" not in response.content.decode()


# --- the response cache -----------------------------------------------------------------------------------------------


async def test_one_users_cached_answer_is_not_served_to_another(
    alice: Tenant, bob: Tenant, provider: Provider, upstream: MockAnthropicUpstream, settings: Any
) -> None:
    settings.LYNKR_PROMPT_CACHE_ENABLED = True
    response_cache.cache_clear()
    try:
        assert "x-lynkr-cache" not in (await post(alice, HELLO)).headers
        assert (await post(alice, HELLO)).headers["x-lynkr-cache"] == "hit"
        # A client cannot pick another user's cache scope with a body field of the same name.
        forged = await post(bob, {**HELLO, "lynkr_cache_scope": f"user:{alice.user.pk}"})
        assert forged.status_code == 200 and "x-lynkr-cache" not in forged.headers
        bobs = await post(bob, {**HELLO, "max_tokens": 63})
        assert (await post(alice, {**HELLO, "max_tokens": 63})).headers.get("x-lynkr-cache") != "hit"
        assert bobs.status_code == 200 and "x-lynkr-cache" not in bobs.headers
        assert len(upstream.messages_requests) == 4
        await usage_flush()
        assert not any(r.cache_hit for r in await records_of(bob))
        assert sorted(r.cache_hit for r in await records_of(alice)) == [False, False, True]
    finally:
        response_cache.cache_clear()


# --- usage attribution ------------------------------------------------------------------------------------------------


async def test_a_request_id_used_by_another_user_does_not_erase_usage(
    alice: Tenant, bob: Tenant, provider: Provider
) -> None:
    header = {"x-request-id": "trace-0001", "x-claude-code-session-id": "s"}
    assert (await post(alice, HELLO, **header)).status_code == 200
    await usage_flush()
    assert (await post(bob, HELLO, **header)).status_code == 200
    await usage_flush()
    assert len(await records_of(bob)) == 1
    (bob_session,) = await sessions_of(bob)
    assert await sync_to_async(Turn.objects.filter(session=bob_session).count)() == 1


# --- admin ------------------------------------------------------------------------------------------------------------


def _gateway_admin_urls() -> list[str]:
    return [
        f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        for model in admin.site._registry
        if model._meta.app_label in ("gateway", "providers")
    ]


def test_usage_admin_pages_are_registered() -> None:
    urls = _gateway_admin_urls()
    for name in ("usagerecord", "session", "budget", "ratelimit", "apikey"):
        assert f"/admin/gateway/{name}/" in urls


def test_admin_pages_require_staff(alice: Tenant) -> None:
    anonymous = Client()
    member = Client()
    member.login(username="alice", password="x" * 12)
    for url in _gateway_admin_urls():
        for client in (anonymous, member):
            response = client.get(url)
            assert response.status_code == 302 and "/admin/login/" in response["location"], url


def test_staff_without_permissions_cannot_read_usage() -> None:
    User.objects.create_user(username="intern", password="y" * 12, is_staff=True)
    client = Client()
    client.login(username="intern", password="y" * 12)
    for name in ("usagerecord", "session", "budget"):
        assert client.get(f"/admin/gateway/{name}/").status_code == 403


def test_staff_with_view_permission_and_superusers_can(alice: Tenant) -> None:
    auditor = User.objects.create_user(username="auditor", password="y" * 12, is_staff=True)
    auditor.user_permissions.add(Permission.objects.get(codename="view_usagerecord"))
    client = Client()
    client.login(username="auditor", password="y" * 12)
    assert client.get("/admin/gateway/usagerecord/").status_code == 200
    assert client.get("/admin/gateway/session/").status_code == 403
    User.objects.create_superuser(username="root", password="z" * 12)
    boss = Client()
    boss.login(username="root", password="z" * 12)
    for url in _gateway_admin_urls():
        assert boss.get(url).status_code == 200, url
