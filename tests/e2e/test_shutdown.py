"""Graceful shutdown with a real server: 20 slow streams in flight, SIGTERM; every stream completes, each is billed
once, readiness is 503 during the drain, new requests are refused, and the process exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import LynkrServer
from tests.mocks.anthropic_upstream import MockAnthropicUpstream, ScriptedResponse, stream_events

pytestmark = pytest.mark.e2e

STREAMS = 20


async def _run(server: LynkrServer) -> tuple[list[str], list[str], list[int], int]:
    async with httpx.AsyncClient(timeout=60) as client:
        started = asyncio.Event()
        first_bytes = 0

        async def one(n: int) -> tuple[str, str]:
            nonlocal first_bytes
            body = {"model": "m", "max_tokens": 50, "stream": True, "messages": [{"role": "user", "content": f"s{n}"}]}
            async with client.stream("POST", f"{server.url}/v1/messages", json=body,
                                     headers={"x-api-key": server.api_key}) as response:  # fmt: skip
                chunks = []
                async for chunk in response.aiter_text():
                    chunks.append(chunk)
                    if len(chunks) == 1:
                        first_bytes += 1
                        if first_bytes == STREAMS:
                            started.set()
                return response.headers["request-id"], "".join(chunks)

        tasks = [asyncio.create_task(one(n)) for n in range(STREAMS)]
        await asyncio.wait_for(started.wait(), 30)
        assert server.process is not None
        os.killpg(server.process.pid, signal.SIGTERM)
        ready_codes: list[int] = []
        refused = 0
        for _ in range(10):  # during the drain
            await asyncio.sleep(0.1)
            try:
                ready_codes.append((await client.get(f"{server.url}/health/ready")).status_code)
                late = await client.post(f"{server.url}/v1/messages", json={"model": "m", "max_tokens": 5,
                                         "messages": [{"role": "user", "content": "late"}]},
                                         headers={"x-api-key": server.api_key})  # fmt: skip
                refused += late.status_code == 503
            except httpx.TransportError:
                break
        results = await asyncio.gather(*tasks)
    return [r[0] for r in results], [r[1] for r in results], ready_codes, refused


@pytest.mark.parametrize("server_name", ["daphne", "uvicorn"])
def test_sigterm_drains_streams_and_bills_each_once(tmp_path: Path, server_name: str) -> None:
    with MockAnthropicUpstream() as upstream:
        for n in range(STREAMS):
            upstream.enqueue(ScriptedResponse(events=stream_events("up", [{"type": "text", "text": f"answer {n} " * 4}],
                                                                    "end_turn", 10), chunk_delay=0.3))  # fmt: skip
        env = {"MODEL_PROVIDER": "azure-anthropic", "AZURE_ANTHROPIC_ENDPOINT": upstream.url}
        env["LYNKR_SERVER"] = server_name
        server = LynkrServer(data_dir=tmp_path / "lynkr", env_extra=env).start()
        ids, bodies, ready_codes, refused = asyncio.run(_run(server))
        assert server.process is not None
        exit_code = server.process.wait(timeout=30)
    assert exit_code == 0, server.log()[-3000:]
    assert f"({server_name.capitalize()})" in server.log()
    assert all(body.rstrip().endswith('data: {"type":"message_stop"}') for body in bodies)  # every stream completed
    assert ready_codes and all(code == 503 for code in ready_codes), ready_codes
    assert refused >= 1
    deadline = time.monotonic() + 5
    with sqlite3.connect(tmp_path / "lynkr" / "lynkr.sqlite3") as db:
        while True:
            rows = db.execute(
                f"SELECT request_id, status FROM gateway_usagerecord WHERE kind='request' AND request_id IN "
                f"({','.join('?' * len(ids))})",
                ids,
            ).fetchall()
            if len(rows) >= STREAMS or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert sorted(r[0] for r in rows) == sorted(ids)  # each billed exactly once
    assert {r[1] for r in rows} == {200}
