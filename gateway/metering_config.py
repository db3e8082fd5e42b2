"""Per-process caches of what metering needs from the database: prices and rate limits (TTL-refreshed, so an
admin change applies within LYNKR_KEY_CACHE_TTL seconds and no request waits on a query more than once per TTL;
gateway/ttlcache.py)."""

from __future__ import annotations

from gateway.db import db_async
from gateway.models import PriceEntry, RateLimit
from gateway.pricing import Price
from gateway.ratelimit import Limits
from gateway.selectors import KeyInfo
from gateway.ttlcache import TtlCache

_prices: TtlCache[None, tuple[Price, ...]] = TtlCache()
_limits: TtlCache[tuple[int, int], tuple[Limits, Limits]] = TtlCache()


def prices_load() -> tuple[Price, ...]:
    return tuple(
        Price(
            model_pattern=p.model_pattern,
            input_per_mtok=p.input_per_mtok,
            output_per_mtok=p.output_per_mtok,
            cache_read_per_mtok=p.cache_read_per_mtok,
            cache_write_per_mtok=p.cache_write_per_mtok,
            provider_id=p.provider_id,
            priority=p.priority,
        )
        for p in PriceEntry.objects.all()
    )


_prices_load_async = db_async(prices_load)  # wrapped once: db_async builds two wrapper functions per call


async def prices() -> tuple[Price, ...]:
    return await _prices.get(None, _prices_load_async)


def _limits_of(row: RateLimit | None) -> Limits:
    if row is None:
        return Limits()
    return Limits(row.requests_per_minute, row.input_tokens_per_minute, row.output_tokens_per_minute)


def limits_load(key_id: int, user_id: int) -> tuple[Limits, Limits]:
    key_row = RateLimit.objects.filter(api_key_id=key_id).first()
    user_row = RateLimit.objects.filter(user_id=user_id, api_key__isnull=True).first()
    return _limits_of(key_row), _limits_of(user_row)


_limits_load_async = db_async(limits_load)  # wrapped once, as _prices_load_async


async def limits_for(key: KeyInfo) -> tuple[Limits, Limits]:
    return await _limits.get((key.id, key.user_id), lambda: _limits_load_async(key.id, key.user_id))


def metering_cache_clear() -> None:
    _prices.clear()
    _limits.clear()
