"""Sanity checks of the hot-path benchmark's own parts (bench/): the mock upstream's wire output, the load
generator's HTTP parsing and counting, the result aggregation, and the FLOOR endpoint. Nothing here is timed."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bench import http1, loadgen, mock_upstream, stats
from bench.http1 import parse_request
from bench.mock_upstream import MockConfig, render


def _sse_data(raw: bytes) -> list[dict[str, Any]]:
    """The JSON of each ``data:`` line of a chunked SSE response."""
    return [
        json.loads(line[6:])
        for line in _sse_body(raw).decode().splitlines()
        if line.startswith("data: ") and line != "data: [DONE]"
    ]


def test_rendered_streams_carry_the_whole_text_in_the_configured_chunks() -> None:
    config = MockConfig(chunks=7, text_bytes=300)
    r = render(config)
    text = mock_upstream.answer_text(300)
    assert len(text) == 300
    openai = _sse_data(r.openai_first + b"".join(r.openai_deltas) + r.openai_tail)
    contents = [c["choices"][0]["delta"].get("content") for c in openai if c["choices"]]
    assert "".join(c for c in contents if c) == text
    assert sum(1 for c in openai if c["choices"] and c["choices"][0]["delta"].get("content")) == 7
    assert openai[-1]["choices"] == [] and openai[-1]["usage"]["prompt_tokens"] == config.input_tokens
    anthropic = _sse_data(r.anthropic_first + b"".join(r.anthropic_deltas) + r.anthropic_tail)
    kinds = [e["type"] for e in anthropic]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert "".join(e["delta"]["text"] for e in anthropic if e["type"] == "content_block_delta") == text
    assert json.loads(r.anthropic_json.split(b"\r\n\r\n", 1)[1])["content"][0]["text"] == text
    assert json.loads(r.openai_json.split(b"\r\n\r\n", 1)[1])["choices"][0]["message"]["content"] == text


def test_parse_request_handles_pipelined_and_chunked_bodies() -> None:
    buf = bytearray(b"POST /v1/messages HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
    buf += b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    buf += b"2\r\nhi\r\n3;ext=1\r\n!!!\r\n0\r\n\r\n"
    first, used = parse_request(buf)
    assert first is not None and (first.path, first.body, first.close) == (b"/v1/messages", b"abc", False)
    del buf[:used]
    second, used = parse_request(buf)
    assert second is not None and (second.body, second.close) == (b"hi!!!", True)
    assert used == len(buf)
    assert parse_request(bytearray(b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nabc")) == (None, 0)


def test_response_parser_survives_any_split_of_a_chunked_stream() -> None:
    r = render(MockConfig(chunks=5, text_bytes=100))
    raw = r.anthropic_first + b"".join(r.anthropic_deltas) + r.anthropic_tail
    expected_body = len(_sse_body(raw))
    for step in (1, 7, 4096):
        sample = http1.Sample(start=0.0)
        parser = http1.ResponseParser(sample, b"content_block_delta")
        for i in range(0, len(raw), step):
            assert not parser.done
            parser.feed(raw[i : i + step], float(i + 1))
        assert parser.done, step
        assert sample.status == 200
        assert sample.body_bytes == expected_body
        assert 0 < sample.first_byte <= sample.first_token <= sample.end


def _sse_body(raw: bytes) -> bytes:
    body = raw.split(b"\r\n\r\n", 1)[1]
    out = bytearray()
    while True:
        size_line, body = body.split(b"\r\n", 1)
        size = int(size_line, 16)
        if size == 0:
            return bytes(out)
        out += body[:size]
        body = body[size + 2 :]


@pytest.fixture
async def mock() -> AsyncIterator[int]:
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.ensure_future(mock_upstream.serve("127.0.0.1", 0, MockConfig(chunks=4), ready.set_result))
    port = await asyncio.wait_for(ready, 5)
    yield port
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def _args(**overrides: Any) -> argparse.Namespace:
    values = {
        "concurrency": 3,
        "requests": 30,
        "duration": 0.0,
        "warmup": 0.0,
        "marker": "content_block_delta",
        "timeout": 10.0,
        "summary_only": False,
        "watch": [],
    }
    return argparse.Namespace(**{**values, **overrides})


def _spec(port: int, path: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": port, "path": path, "headers": {}, "body": json.dumps(body)}


async def _control(port: int, method: str, path: str, body: bytes = b"") -> dict[str, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(http1.build_request("127.0.0.1", port, path, {}, body).replace(b"POST", method.encode(), 1))
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1])
    answer = await reader.readexactly(length)
    writer.close()
    result: dict[str, Any] = json.loads(answer)
    return result


async def test_loadgen_counts_every_request_against_the_mock(mock: int) -> None:
    stream = await loadgen.run_load(_spec(mock, "/v1/messages?beta=true", {"stream": True}), _args())
    assert stream["requests"] == 30 and stream["errors"] == {}
    assert len(stream["ttft_ms"]) == len(stream["latency_ms"]) == 30
    r = render(MockConfig(chunks=4))
    assert stream["body_bytes"] == len(_sse_body(r.anthropic_first + b"".join(r.anthropic_deltas) + r.anthropic_tail))
    plain = await loadgen.run_load(_spec(mock, "/v1/chat/completions", {"model": "m"}), _args(summary_only=True))
    assert plain["requests"] == 30 and plain["latency_ms"]["n"] == 30
    assert plain["body_bytes"] == len(r.openai_json.split(b"\r\n\r\n", 1)[1])
    counts = await _control(mock, "GET", "/__mock/stats")
    assert (counts["anthropic"], counts["openai_chat"]) == (30, 30)


async def test_mock_config_changes_answers_and_holds_streams(mock: int) -> None:
    config = await _control(
        mock, "POST", "/__mock/config", b'{"chunks": 9, "hold_interval_ms": 5, "hold_seconds": 0.05}'
    )
    assert config["chunks"] == 9
    result = await loadgen.run_load(_spec(mock, "/v1/messages", {"stream": True}), _args(requests=2, concurrency=1))
    r = render(MockConfig(chunks=9))
    assert result["body_bytes"] == len(_sse_body(r.anthropic_first + b"".join(r.anthropic_deltas) + r.anthropic_tail))
    held = await loadgen.run_load(
        _spec(mock, "/v1/messages", {"stream": True, "note": "BENCH-HOLD"}), _args(requests=1, concurrency=1)
    )
    # A held stream keeps sending deltas until hold_seconds, then ends normally.
    assert held["requests"] == 1 and held["body_bytes"] > result["body_bytes"]


def test_percentiles_and_pooled_rounds() -> None:
    assert stats.percentile([1, 2, 3, 4], 50) == 2.5
    assert stats.percentile([5], 99) == 5
    assert stats.summarize([]) == {"n": 0}
    one = {"requests": 10, "seconds": 2.0, "rps": 5.0, "errors": {"http 502": 1}, "latency_ms": [1.0] * 10}
    two = {"requests": 30, "seconds": 2.0, "rps": 15.0, "errors": {"http 502": 2}, "latency_ms": [3.0] * 30}
    for r, cpu in ((one, 0.5), (two, 1.0)):
        r |= {"ttfb_ms": r["latency_ms"], "ttft_ms": [], "cpu": {"server": cpu}, "upstream_calls": r["requests"]}
    pooled = stats.pool_rounds([one, two])
    assert pooled["rps"] == 10.0 and pooled["requests"] == 40 and pooled["upstream_calls"] == 40
    assert pooled["errors"] == {"http 502": 3}
    assert pooled["latency_ms"]["p50"] == 3.0 and pooled["latency_ms"]["n"] == 40
    assert pooled["cpu"] == {"server": 0.75}
    assert pooled["ttft_ms"] == {"n": 0}


def _cell(p50: float, rps: float, ttft: float | None = None) -> dict[str, Any]:
    return {
        "rps": rps,
        "errors": {},
        "latency_ms": {"p50": p50, "p95": p50, "p99": 2 * p50},
        "ttft_ms": {"p50": ttft, "p99": ttft} if ttft is not None else {"n": 0},
        "cpu": {"server": 1.0},
    }


def test_derived_figures_and_markdown() -> None:
    cells = {
        "direct": {"json": {"1": _cell(0.1, 5000)}, "stream": {"1": _cell(0.2, 4000, 0.2)}},
        "floor": {"json": {"1": _cell(2.1, 400)}, "stream": {"1": _cell(2.5, 350, 2.4)}},
        "lynkr": {"json": {"1": _cell(3.0, 300), "64": _cell(100, 320)}, "stream": {"1": _cell(4.0, 250, 3.2)}},
        "litellm": {"json": {"1": _cell(30.1, 30)}, "stream": {"1": _cell(40.0, 20, 31.2)}},
    }
    derived = stats.derive(cells)
    row = derived["lynkr"]
    assert row["json_added_p50_ms_c1"] == 2.9
    assert row["json_own_work_p50_ms_c1"] == 0.9
    assert row["json_peer_added_p50_ms_c1"] == 30.0
    assert row["json_added_ratio_vs_peer"] == pytest.approx(0.097, abs=0.001)
    assert row["json_throughput_ratio_vs_peer"] == pytest.approx(320 / 30, abs=0.01)
    assert row["json_p99_over_p50_c64"] == 2.0
    assert row["stream_added_p50_ms_c1"] == 3.0 and row["stream_own_work_p50_ms_c1"] == 0.8
    assert row["stream_p99_over_p50_c64"] is None
    result = {
        "meta": {
            "date": "d",
            "label": "PRELIMINARY",
            "command": "c",
            "cpus": 2,
            "cpu_model": "x",
            "loadavg_before": "0",
            "loadavg_after": "0",
            "pinned": False,
            "body_file": "b",
            "body_bytes": 1,
            "tools": 24,
            "system_blocks": 3,
            "messages": 4,
            "mock_config": {},
            "warmup": 1,
            "duration": 1,
            "rounds": 1,
        },
        "cells": cells,
        "derived": derived,
        "rss": {"lynkr": {"peak_mb": 120.0}},
        "startup": {"lynkr": 1.5},
    }
    text = stats.markdown(result)
    assert "**PRELIMINARY**" in text
    assert "| lynkr | 64 | 320.0 | 100.00 |" in text
    assert "| lynkr | 1.50 |" in text


async def test_floor_endpoint_parses_and_answers(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    from django.test import AsyncClient

    from gateway.bench_floor import floor_urlpatterns

    monkeypatch.delenv("LYNKR_BENCH_FLOOR", raising=False)
    assert floor_urlpatterns() == []
    monkeypatch.setenv("LYNKR_BENCH_FLOOR", "1")
    settings.ROOT_URLCONF = "bench.floor_urls"
    import importlib

    import bench.floor_urls

    importlib.reload(bench.floor_urls)
    client = AsyncClient()
    plain = await client.post("/bench/floor/v1/messages", b'{"model": "m"}', content_type="application/json")
    assert plain.status_code == 200 and plain.json()["type"] == "message"
    streamed = await client.post(
        "/bench/floor/v1/messages?chunks=3", b'{"stream": true}', content_type="application/json"
    )
    assert streamed.status_code == 200
    body = b"".join([chunk async for chunk in streamed.streaming_content])
    assert body.count(b"event: content_block_delta") == 3 and body.endswith(b'data: {"type":"message_stop"}\n\n')


def test_derived_figures_without_baseline_or_peer_are_missing_not_errors() -> None:
    derived = stats.derive({"lynkr": {"stream": {"1": _cell(4.0, 250, 3.2)}}})
    row = derived["lynkr"]
    assert row["stream_added_p50_ms_c1"] is None and row["stream_added_ratio_vs_peer"] is None
    assert row["stream_best_rps"] == 250 and row["stream_throughput_ratio_vs_peer"] is None
    assert "| lynkr | 1 | 250.0 |" in "\n".join(
        stats.cells_table({"lynkr": {"stream": {"1": _cell(4.0, 250, 3.2)}}}, "stream", {})
    )


def test_the_ramp_lifts_lynkrs_capacity_limits_above_its_highest_level() -> None:
    from bench import run

    args = run.parse_args(["--ramp", "100,2500", "--ramp-targets", "lynkr,litellm"])
    env = run.capacity_env(args)
    assert env == {"LOAD_SHEDDING_ACTIVE_REQUESTS_THRESHOLD": "3000", "LYNKR_UPSTREAM_MAX_CONNECTIONS": "3000"}
    assert run.capacity_env(run.parse_args(["--ramp", ""])) == {}
    assert run.capacity_env(run.parse_args(["--ramp-targets", "litellm"])) == {}
    meta = {"targets": {"lynkr": {"server": "daphne", "env_extra": env}, "litellm": {"version": "1"}}}
    assert stats._settings_lines(meta)[0] == (
        "Lynkr settings changed for this run: lynkr: `LOAD_SHEDDING_ACTIVE_REQUESTS_THRESHOLD=3000`, "
        "`LYNKR_UPSTREAM_MAX_CONNECTIONS=3000`."
    )
