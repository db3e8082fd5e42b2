"""Streaming is relayed as it arrives: each upstream event reaches the client when the upstream sends it."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.e2e.server import LynkrServer
from tests.mocks.anthropic_upstream import MockAnthropicUpstream, ScriptedResponse, stream_events

pytestmark = pytest.mark.e2e


def test_events_arrive_one_by_one_not_buffered(gateway: LynkrServer, module_upstream: MockAnthropicUpstream) -> None:
    events = stream_events("up", [{"type": "text", "text": "one two three four"}], "end_turn", 10)
    delay = 0.4
    module_upstream.enqueue(ScriptedResponse(events=events, chunk_delay=delay))
    arrivals: list[tuple[float, str]] = []
    started = time.monotonic()
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/messages?beta=true",
        headers={"x-api-key": gateway.api_key},
        json={"model": "m", "max_tokens": 50, "stream": True, "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    ) as response:
        for line in response.iter_lines():
            if line.startswith("event: "):
                arrivals.append((time.monotonic() - started, line[7:]))
    names = [name for _, name in arrivals]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    total = (len(events) - 1) * delay
    # message_start is held until the first content event (pre-first-token failover, docs/architecture.md);
    # from there on the events are spread over the upstream's pace (one every `delay`), not buffered.
    first = arrivals[1][0]
    assert arrivals[0][0] <= first + 0.05
    for index, (at, _) in enumerate(arrivals[1:]):
        assert abs((at - first) - index * delay) < delay * 0.5, arrivals
    assert arrivals[-1][0] - first >= (total - delay) * 0.9
