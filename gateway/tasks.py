"""Celery tasks of the gateway app (thin: call a service)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="gateway.ping")
def ping(value: str = "pong") -> str:
    """Round-trip check used by `lynkr check` and the tests to prove a worker consumes the queue."""
    return value
