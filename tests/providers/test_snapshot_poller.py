"""The routing snapshot poller (providers/snapshot.py) survives hiccups and stops quietly when the process exits."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from providers import snapshot


async def test_poller_stops_quietly_once_thread_pools_refuse_work(
    monkeypatch: pytest.MonkeyPatch, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.LYNKR_ROUTING_POLL = 0.01
    calls = 0

    async def refused() -> int:
        nonlocal calls
        calls += 1
        raise RuntimeError("cannot schedule new futures after shutdown")

    monkeypatch.setattr(snapshot, "routing_version_current", refused)
    monkeypatch.setattr(snapshot._Cache, "snapshot", object())
    monkeypatch.setattr(snapshot._Cache, "stale", False)
    with caplog.at_level(logging.ERROR, logger="providers.snapshot"):
        await asyncio.wait_for(snapshot._poll(), timeout=2)  # returns: the poller ended
    assert calls == 1 and not caplog.records, [r.exc_text for r in caplog.records]


async def test_poller_logs_other_errors_and_goes_on(
    monkeypatch: pytest.MonkeyPatch, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.LYNKR_ROUTING_POLL = 0.01
    calls = 0

    async def broken() -> int:
        nonlocal calls
        calls += 1
        raise RuntimeError("redis hiccup")

    monkeypatch.setattr(snapshot, "routing_version_current", broken)
    monkeypatch.setattr(snapshot._Cache, "snapshot", object())
    monkeypatch.setattr(snapshot._Cache, "stale", False)
    task = asyncio.create_task(snapshot._poll())
    with caplog.at_level(logging.ERROR, logger="providers.snapshot"):
        while calls < 3:
            await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert any("refresh failed" in r.getMessage() for r in caplog.records)
