"""Hand-made usage for the dashboard tests: users, keys, sessions and request records at chosen times."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User

from gateway.models import ApiKey, Session, UsageRecord

# A fixed "now" for the selectors (the views use the real clock): Wednesday 2026-03-18 15:30 UTC.
NOW = datetime(2026, 3, 18, 15, 30, tzinfo=UTC)

_ids = itertools.count(1)


def make_key(user: User, prefix: str, name: str = "") -> ApiKey:
    return ApiKey.objects.create(user=user, name=name, prefix=prefix, key_hash=f"hash-{prefix}")


def make_record(
    *,
    user: User | None,
    key: ApiKey | None = None,
    when: datetime = NOW,
    cost: str | None = "0.001",
    input_tokens: int = 100,
    output_tokens: int = 10,
    status: int = 200,
    provider: str = "anthropic",
    model: str = "claude-sonnet-4-5",
    rule: str = "default",
    latency_ms: int = 500,
    cache_hit: bool = False,
    session: Session | None = None,
    kind: str = "request",
    request_id: str | None = None,
    **extra: Any,
) -> UsageRecord:
    n = next(_ids)
    request_id = request_id or f"req_{n:06d}"
    return UsageRecord.objects.create(
        record_id=f"{request_id}:{kind}:{n}", kind=kind, request_id=request_id, created_at=when, user=user, api_key=key,
        session=session, provider=provider, upstream_model=f"up-{model}" if provider else "", client_model=model,
        route_rule=rule, input_tokens=input_tokens, output_tokens=output_tokens,
        cost_usd=None if cost is None else Decimal(cost), latency_ms=latency_ms, status=status, cache_hit=cache_hit,
        **extra,
    )  # fmt: skip


@pytest.fixture
def alice(db: None) -> User:
    return User.objects.create_user(username="alice", password="alice-password-1")


@pytest.fixture
def bob(db: None) -> User:
    return User.objects.create_user(username="bob", password="bob-password-12")


@pytest.fixture
def record() -> Callable[..., UsageRecord]:
    return make_record
