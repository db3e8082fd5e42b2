"""Writes for the gateway app (HackSoft style: keyword-only, named <entity>_<action>)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from gateway.keys import key_generate, key_hash, key_prefix_normalize
from gateway.models import ApiKey


class KeyError_(Exception):
    """A key operation that cannot be done (unknown user or prefix); the message says why."""


@dataclass(frozen=True, slots=True)
class IssuedKey:
    prefix: str
    secret: str  # shown once, never stored
    username: str
    expires_at: datetime | None


def apikey_create(*, user: User, name: str = "", expires_days: int | None = None) -> IssuedKey:
    if expires_days is not None and expires_days <= 0:
        raise KeyError_("expires must be a positive number of days")
    secret, prefix = key_generate()
    expires_at = timezone.now() + timedelta(days=expires_days) if expires_days else None
    ApiKey.objects.create(user=user, name=name, prefix=prefix, key_hash=key_hash(secret), expires_at=expires_at)
    return IssuedKey(prefix=prefix, secret=secret, username=user.get_username(), expires_at=expires_at)


def apikey_create_for_username(*, username: str, name: str = "", expires_days: int | None = None) -> IssuedKey:
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise KeyError_(f"no user named {username!r}")
    return apikey_create(user=user, name=name, expires_days=expires_days)


def apikey_revoke(*, prefix: str) -> str:
    normalized = key_prefix_normalize(prefix)
    updated = ApiKey.objects.filter(prefix=normalized, revoked_at__isnull=True).update(revoked_at=timezone.now())
    if not updated:
        if ApiKey.objects.filter(prefix=normalized).exists():
            raise KeyError_(f"key {normalized} is already revoked")
        raise KeyError_(f"no key with prefix {normalized}")
    return normalized


def apikey_touch_many(*, last_used: dict[int, datetime]) -> None:
    """Batched last-used update (one UPDATE per key, in one transaction), called by the flusher."""
    with transaction.atomic():
        for key_id, when in last_used.items():
            ApiKey.objects.filter(pk=key_id).update(last_used_at=when)


@dataclass(frozen=True, slots=True)
class BootstrapResult:
    username: str
    password: str
    key: IssuedKey


def admin_bootstrap(*, username: str) -> BootstrapResult | None:
    """On a fresh database: an admin user with a generated password and one API key. None if users exist."""
    user_model = get_user_model()
    with transaction.atomic():
        if user_model.objects.exists():
            return None
        password = secrets.token_urlsafe(18)
        user = user_model.objects.create_superuser(username=username, email="", password=password)
        key = apikey_create(user=user, name="first key")
    return BootstrapResult(username=username, password=password, key=key)
