"""Reads about accounts for the dashboard pages: the user filter's choices and a user's own API keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.contrib.auth import get_user_model

from gateway.models import ApiKey

USERS_IN_FILTER = 500


def users_for_filter(*, selected: int | None = None) -> list[tuple[int, str]]:
    """(id, username) for the user select, alphabetical, bounded (the selected user is always included)."""
    users = get_user_model().objects.order_by("username").values_list("id", "username")
    listed = [(int(pk), str(name)) for pk, name in users[:USERS_IN_FILTER]]
    if selected is not None and all(pk != selected for pk, _ in listed):
        listed += [(int(pk), str(name)) for pk, name in users.filter(pk=selected)]
    return listed


@dataclass(frozen=True, slots=True)
class KeyRow:
    prefix: str  # the public part only: the secret is never stored, its hash never leaves the database
    label: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    status: str  # "active" | "expired" | "revoked"


def apikeys_of_user(*, user_id: int, now: datetime | None = None) -> list[KeyRow]:
    """The user's own API keys, newest first (revoked and expired ones too, marked)."""
    now = now or datetime.now(UTC)
    rows = (
        ApiKey.objects.filter(user_id=user_id)
        .order_by("-created_at", "-id")
        .values("prefix", "name", "created_at", "last_used_at", "expires_at", "revoked_at")
    )
    out = []
    for r in rows:
        status = "active"
        if r["revoked_at"] is not None:
            status = "revoked"
        elif r["expires_at"] is not None and r["expires_at"] <= now:
            status = "expired"
        out.append(KeyRow(r["prefix"], r["name"], r["created_at"], r["last_used_at"], r["expires_at"], status))
    return out
