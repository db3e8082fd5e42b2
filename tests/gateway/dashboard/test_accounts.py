"""The user filter's choices and a user's own keys."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User

from gateway.dashboard import accounts
from tests.gateway.dashboard.conftest import NOW, make_key

pytestmark = pytest.mark.django_db


def test_users_for_filter(alice: User, bob: User, monkeypatch: pytest.MonkeyPatch) -> None:
    assert accounts.users_for_filter() == [(alice.pk, "alice"), (bob.pk, "bob")]
    monkeypatch.setattr(accounts, "USERS_IN_FILTER", 1)
    assert accounts.users_for_filter(selected=bob.pk) == [(alice.pk, "alice"), (bob.pk, "bob")]


def test_keys_of_a_user(alice: User, bob: User) -> None:
    active = make_key(alice, "lk_active", "laptop")
    expired = make_key(alice, "lk_expired")
    expired.expires_at = NOW - timedelta(days=1)
    expired.created_at = NOW - timedelta(days=10)
    expired.save()
    revoked = make_key(alice, "lk_revoked")
    revoked.revoked_at = NOW
    revoked.created_at = NOW - timedelta(days=20)
    revoked.save()
    make_key(bob, "lk_bob")
    keys = accounts.apikeys_of_user(user_id=alice.pk, now=NOW)
    assert [(k.prefix, k.label, k.status) for k in keys] == [
        ("lk_active", "laptop", "active"), ("lk_expired", "", "expired"), ("lk_revoked", "", "revoked")]  # fmt: skip
    assert active.key_hash not in repr(keys)
