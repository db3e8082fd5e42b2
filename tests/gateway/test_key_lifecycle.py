"""API keys: create, use, expire, revoke; only a hash is stored; last-used is written in batches."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from gateway.auth import last_used_buffer, request_authenticate
from gateway.errors import AuthenticationError
from gateway.keys import key_hash
from gateway.models import ApiKey
from gateway.services import KeyError_, apikey_create, apikey_create_for_username, apikey_revoke

pytestmark = pytest.mark.django_db(transaction=True)


def _user(name: str = "alice") -> User:
    return User.objects.create_user(username=name, password="x" * 12)


def test_only_the_hash_is_stored() -> None:
    issued = apikey_create(user=_user(), name="laptop")
    row = ApiKey.objects.get(prefix=issued.prefix)
    assert row.key_hash == key_hash(issued.secret)
    assert issued.secret.startswith(issued.prefix + "_")
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM gateway_apikey")
        stored = " ".join(str(value) for row_values in cursor.fetchall() for value in row_values)
    assert issued.secret not in stored
    assert issued.secret.split("_", 1)[1] not in stored


async def test_use_then_revoke_is_refused_within_ttl() -> None:
    issued = await sync_to_async(apikey_create_for_username_with_user)()
    info = await request_authenticate({"x-api-key": issued.secret})
    assert info.prefix == issued.prefix
    with override_settings(LYNKR_KEY_CACHE_TTL=0.2):
        await sync_to_async(apikey_revoke)(prefix=issued.prefix)
        # Still cached for at most the TTL, then refused everywhere.
        await asyncio.sleep(0.25)
        with pytest.raises(AuthenticationError, match="revoked"):
            await request_authenticate({"x-api-key": issued.secret})


def apikey_create_for_username_with_user() -> object:
    _user("bob")
    return apikey_create_for_username(username="bob", name="cli")


async def test_expired_key_refused() -> None:
    def make() -> object:
        issued = apikey_create(user=_user("carol"), expires_days=1)
        ApiKey.objects.filter(prefix=issued.prefix).update(expires_at=timezone.now() - timedelta(seconds=1))
        return issued

    issued = await sync_to_async(make)()
    with pytest.raises(AuthenticationError, match="expired") as caught:
        await request_authenticate({"authorization": f"Bearer {issued.secret}"})  # type: ignore[attr-defined]
    assert caught.value.retryable is False


async def test_missing_and_unknown_keys() -> None:
    with pytest.raises(AuthenticationError, match="missing API key"):
        await request_authenticate({})
    with pytest.raises(AuthenticationError, match="invalid API key"):
        await request_authenticate({"x-api-key": "sk-lynkr-deadbeef_nope"})


async def test_both_headers_any_valid_one_wins() -> None:
    issued = await sync_to_async(lambda: apikey_create(user=_user("dave")))()
    info = await request_authenticate({"x-api-key": "stale-key", "authorization": f"Bearer {issued.secret}"})
    assert info.prefix == issued.prefix


async def test_disabled_user_refused() -> None:
    def make() -> object:
        user = _user("erin")
        issued = apikey_create(user=user)
        user.is_active = False
        user.save()
        return issued

    issued = await sync_to_async(make)()
    with pytest.raises(AuthenticationError, match="disabled"):
        await request_authenticate({"x-api-key": issued.secret})  # type: ignore[attr-defined]


async def test_last_used_is_batched_not_written_per_request() -> None:
    issued = await sync_to_async(lambda: apikey_create(user=_user("frank")))()
    for _ in range(5):
        await request_authenticate({"x-api-key": issued.secret})
    row = await ApiKey.objects.aget(prefix=issued.prefix)
    assert row.last_used_at is None  # nothing written on the request path
    assert len(last_used_buffer) >= 1
    flushed = await last_used_buffer.flush()
    assert flushed >= 1
    row = await ApiKey.objects.aget(prefix=issued.prefix)
    assert row.last_used_at is not None


def test_revoke_errors_are_explained() -> None:
    issued = apikey_create(user=_user("gina"))
    with pytest.raises(KeyError_, match="no key with prefix"):
        apikey_revoke(prefix="sk-lynkr-zzzzzzzz")
    apikey_revoke(prefix=issued.prefix.removeprefix("sk-lynkr-"))
    with pytest.raises(KeyError_, match="already revoked"):
        apikey_revoke(prefix=issued.prefix)
    with pytest.raises(KeyError_, match="no user"):
        apikey_create_for_username(username="nobody")
    with pytest.raises(KeyError_, match="positive"):
        apikey_create(user=User.objects.get(username="gina"), expires_days=0)
