"""Reads for the gateway app; values cross into async code as frozen dataclasses, never model instances."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.models import ApiKey


@dataclass(frozen=True, slots=True)
class KeyInfo:
    id: int
    prefix: str
    user_id: int
    username: str
    expires_at: float | None  # unix time
    revoked: bool
    user_active: bool
    group_ids: frozenset[int] = frozenset()


def apikey_get_by_hash(*, key_hash: str) -> KeyInfo | None:
    row = ApiKey.objects.select_related("user").filter(key_hash=key_hash).first()
    if row is None:
        return None
    return KeyInfo(
        id=row.pk,
        prefix=row.prefix,
        user_id=row.user_id,
        username=row.user.get_username(),
        expires_at=row.expires_at.timestamp() if row.expires_at else None,
        revoked=row.revoked_at is not None,
        user_active=row.user.is_active,
        group_ids=frozenset(row.user.groups.values_list("id", flat=True)),
    )


@dataclass(frozen=True, slots=True)
class KeyRow:
    prefix: str
    name: str
    username: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


def apikey_list(*, username: str | None = None) -> list[KeyRow]:
    rows = ApiKey.objects.select_related("user").order_by("-created_at")
    if username:
        rows = rows.filter(user__username=username)
    return [
        KeyRow(r.prefix, r.name, r.user.get_username(), r.created_at, r.last_used_at, r.expires_at, r.revoked_at)
        for r in rows
    ]
