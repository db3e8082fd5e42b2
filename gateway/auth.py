"""Authentication of inbound requests by API key, from an in-process TTL cache (the DB only on a miss).

A cached entry is re-read from the database once it is older than ``LYNKR_KEY_CACHE_TTL`` (5 s), so a
revocation made anywhere (admin, ``lynkr keys revoke``, another process) is honoured by every process within
that time with no per-request database query. Unknown keys are cached too, so a client hammering with a bad key
costs one query per TTL.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime

from gateway.db import db_async
from gateway.errors import AuthenticationError
from gateway.keys import key_hash
from gateway.selectors import KeyInfo, apikey_get_by_hash
from gateway.services import apikey_touch_many
from gateway.ttlcache import TtlCache
from gateway.writebehind import CoalescingBuffer

_cache: TtlCache[str, KeyInfo | None] = TtlCache()


def _touch_flush(items: dict[int, datetime]) -> None:
    apikey_touch_many(last_used=items)


last_used_buffer: CoalescingBuffer[int, datetime] = CoalescingBuffer("apikey-last-used", _touch_flush, 10.0)


def presented_keys(headers: Mapping[str, str]) -> list[str]:
    """``x-api-key`` and/or ``Authorization: Bearer`` (Claude Code sends both when both env vars are set)."""
    keys: list[str] = []
    api_key = headers.get("x-api-key", "").strip()
    if api_key:
        keys.append(api_key)
    authorization = headers.get("authorization", "").strip()
    if authorization[:7].lower() == "bearer ":
        token = authorization[7:].strip()
        if token and token not in keys:
            keys.append(token)
    return keys


async def _lookup(hashed: str) -> KeyInfo | None:
    return await _cache.get(hashed, lambda: db_async(apikey_get_by_hash)(key_hash=hashed))


def key_cache_clear() -> None:
    _cache.clear()


async def request_authenticate(headers: Mapping[str, str]) -> KeyInfo:
    keys = presented_keys(headers)
    if not keys:
        raise AuthenticationError("missing API key: send it in the x-api-key header or as Authorization: Bearer")
    problem = "invalid API key"
    for key in keys:
        info = await _lookup(key_hash(key))
        if info is None:
            continue
        if info.revoked:
            problem = f"API key {info.prefix} has been revoked"
        elif info.expires_at is not None and info.expires_at <= time.time():
            problem = f"API key {info.prefix} has expired"
        elif not info.user_active:
            problem = f"the user of API key {info.prefix} is disabled"
        else:
            last_used_buffer.put(info.id, datetime.now(UTC))
            return info
    raise AuthenticationError(problem)
