"""The process's circuit-breaker store: Redis when configured (shared by every process), else in memory."""

from __future__ import annotations

from functools import cache

from django.conf import settings

from providers.resilience import BreakerConfig, BreakerStore, LocalBreakers, RedisBreakers, RetryPolicy


def breaker_config() -> BreakerConfig:
    return BreakerConfig(
        failure_threshold=settings.LYNKR_BREAKER_FAILURES,
        success_threshold=settings.LYNKR_BREAKER_SUCCESSES,
        open_seconds=settings.LYNKR_BREAKER_OPEN_SECONDS,
    )


@cache
def breaker_store() -> BreakerStore:
    if settings.REDIS_URL:
        return RedisBreakers(settings.REDIS_URL, breaker_config())
    return LocalBreakers(breaker_config())


def retry_policy() -> RetryPolicy:
    return RetryPolicy(
        max_retries=settings.LYNKR_RETRY_MAX_RETRIES,
        initial_delay=settings.LYNKR_RETRY_INITIAL_DELAY,
        max_delay=settings.LYNKR_RETRY_MAX_DELAY,
    )
