"""The benchmark's load generator: N keep-alive HTTP/1.1 connections on raw asyncio sockets (uvloop when installed).

Why not wrk: wrk reports whole-response latency only, and the benchmark needs the streaming time to first token.
This client records, per request, the time to the response head, to the first body byte, to the first token (the
first occurrence of a marker such as ``content_block_delta`` in the body) and to the end of the body; it decodes
Content-Length and chunked bodies, never pipelines, and reconnects when the server closes. It measures its own CPU
use (``os.times``) over the measured window so the report can show it is not the bottleneck.

Modes (one JSON object on stdout, or in ``--output``):

- ``load``: ``--concurrency C`` connections send back to back for ``--warmup`` + ``--duration`` seconds (or exactly
  ``--requests N`` requests); requests that finish inside the measured window are counted.
- ``hold``: open ``--hold N`` streams (their body carries the mock's hold marker, so they stay open) at ``--rate``
  per second, wait until every one has its first token, then send ``--probes`` streams on ``--concurrency``
  connections and report their time to first token while the N streams stay open.

The request is read from ``--request-file``: a JSON object ``{"host", "port", "path", "headers", "body"}`` (body as
a string) written by bench/run.py; ``--hold-body-file`` supplies the held streams' body the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from http1 import Connection, ResponseParser, Sample, build_request, install_uvloop, perf, raise_nofile_limit
from stats import summarize


@dataclass
class Window:
    start: float = float("inf")
    end: float = float("inf")


@dataclass
class Collected:
    samples: list[Sample] = field(default_factory=list)
    outside: int = 0
    started: int = 0
    finished: int = 0
    timeouts: int = 0
    max_timeouts: int = 0  # count mode: stop after this many timed-out requests (0: never)
    ready: int = 0  # connections that have had their first answer
    all_ready: asyncio.Event = field(default_factory=asyncio.Event)
    concurrency: int = 0


async def _connect(host: str, port: int) -> Connection:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(lambda: Connection(lambda _c: None), host, port)
    return protocol


async def _worker(
    host: str,
    port: int,
    request: bytes,
    marker: bytes,
    window: Window,
    out: Collected,
    budget: list[int] | None,
    request_timeout: float,
) -> None:
    conn: Connection | None = None
    answered = False
    while perf() < window.end:
        if budget is not None:
            if budget[0] <= 0 or (out.max_timeouts and out.timeouts >= out.max_timeouts):
                break
            budget[0] -= 1
        if conn is None or conn.transport is None:
            try:
                conn = await _connect(host, port)
            except OSError as exc:
                out.samples.append(Sample(start=perf(), end=perf(), error=f"connect: {exc}"))
                await asyncio.sleep(0.05)
                continue
        out.started += 1
        try:
            sample = await asyncio.wait_for(conn.send(request, marker), request_timeout)
        except TimeoutError:
            conn.abort()
            conn = None
            sample = Sample(start=perf() - request_timeout, end=perf(), error="timeout")
            out.timeouts += 1
        out.finished += 1
        if not answered:
            answered = True
            out.ready += 1
            if out.ready >= out.concurrency:
                out.all_ready.set()
        if budget is not None or window.start <= sample.end <= window.end:
            out.samples.append(sample)
        else:
            out.outside += 1
    if conn is not None:
        conn.abort()


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes (proc(5) /proc/<pid>/stat fields 14 and 15), in seconds."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / _CLK_TCK


def parse_watch(specs: list[str]) -> dict[str, list[int]]:
    """``name=pid+pid`` (repeatable) -> {name: [pids]}: processes whose CPU use the window reports."""
    out: dict[str, list[int]] = {}
    for spec in specs:
        name, _, pids = spec.partition("=")
        out[name] = [int(p) for p in pids.split("+") if p]
    return out


def _watched(watch: dict[str, list[int]]) -> dict[str, float]:
    return {name: proc_cpu_seconds(pids) for name, pids in watch.items()}


def _error_counts(samples: list[Sample]) -> list[str]:
    counts: dict[str, int] = {}
    for s in samples:
        key = s.error or (f"http {s.status}" if s.status else "no answer")
        counts[key] = counts.get(key, 0) + 1
    return [f"{key} x{n}" for key, n in sorted(counts.items(), key=lambda kv: -kv[1])[:5]]


def report(samples: list[Sample], seconds: float, cpu: float, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    ok = [s for s in samples if not s.error and 200 <= s.status < 300]
    errors: dict[str, int] = {}
    for s in samples:
        if s.error or not 200 <= s.status < 300:
            key = s.error or f"http {s.status}"
            errors[key] = errors.get(key, 0) + 1
    result: dict[str, Any] = {
        "requests": len(ok),
        "errors": errors,
        "seconds": round(seconds, 4),
        "rps": round(len(ok) / seconds, 2) if seconds > 0 else 0.0,
        "loadgen_cpu": round(cpu / seconds, 4) if seconds > 0 else 0.0,
        "latency_ms": [round((s.end - s.start) * 1000, 4) for s in ok],
        "ttfb_ms": [round((s.first_byte - s.start) * 1000, 4) for s in ok],
        "ttft_ms": [round((s.first_token - s.start) * 1000, 4) for s in ok if s.first_token],
        "body_bytes": ok[0].body_bytes if ok else 0,
    }
    if extra:
        result.update(extra)
    return result


async def run_load(spec: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    request = build_request(spec["host"], spec["port"], spec["path"], spec["headers"], spec["body"].encode())
    marker = args.marker.encode()
    out = Collected(concurrency=args.concurrency, max_timeouts=getattr(args, "max_timeouts", 0))
    window = Window()
    budget: list[int] | None = [args.requests] if args.requests else None
    if budget is not None:
        window.start = perf()
    workers = [
        asyncio.ensure_future(_worker(spec["host"], spec["port"], request, marker, window, out, budget, args.timeout))
        for _ in range(args.concurrency)
    ]
    if budget is None:
        await asyncio.sleep(args.warmup)
        # The window opens once every connection has had an answer, however long the warm-up: a slow target at
        # high concurrency would otherwise be measured while its pipeline is still filling.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(out.all_ready.wait(), args.timeout)
        window.start = perf()
        window.end = window.start + args.duration
    watch = parse_watch(args.watch)
    watched0 = _watched(watch)
    cpu0, wall0 = _cpu_seconds(), perf()
    if args.requests:
        await asyncio.gather(*workers)
        wall1 = perf()
        cpu1 = _cpu_seconds()
    else:
        await asyncio.sleep(args.duration)
        cpu1, wall1 = _cpu_seconds(), perf()
    watched1 = _watched(watch)
    if not args.requests:
        # In-flight requests finish (their samples fall outside the window and are not counted).
        await asyncio.wait(workers, timeout=args.timeout)
        for worker in workers:
            worker.cancel()
    seconds = wall1 - wall0
    cpu = {name: round((watched1[name] - watched0[name]) / seconds, 3) for name in watch} if seconds > 0 else {}
    cpu["loadgen"] = round((cpu1 - cpu0) / seconds, 3) if seconds > 0 else 0.0
    # Requests still without an answer when the cell ended (cancelled): a target that stops answering shows here.
    extra = {"concurrency": args.concurrency, "cpu": cpu, "unfinished": out.started - out.finished}
    result = report(out.samples, seconds, cpu1 - cpu0, extra)
    if args.summary_only:
        for name in ("latency_ms", "ttfb_ms", "ttft_ms"):
            result[name] = summarize(result[name])
    return result


async def run_hold(spec: dict[str, Any], hold_spec: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Open ``args.hold`` long streams, then probe time to first token while they stay open."""
    marker = args.marker.encode()
    hold_request = build_request(
        hold_spec["host"], hold_spec["port"], hold_spec["path"], hold_spec["headers"], hold_spec["body"].encode()
    )
    holders: list[Connection] = []
    hold_samples: list[Sample] = []
    lost = {"count": 0}

    def on_lost(_conn: Connection) -> None:
        lost["count"] += 1

    async def open_one() -> None:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(lambda: Connection(on_lost), spec["host"], spec["port"])
        except OSError as exc:
            hold_samples.append(Sample(start=perf(), end=perf(), error=f"connect: {exc}"))
            return
        holders.append(conn)
        sample = Sample(start=perf())
        conn.parser = ResponseParser(sample, marker)
        conn.future = loop.create_future()
        assert conn.transport is not None
        conn.transport.write(hold_request)
        hold_samples.append(sample)

    t_open = perf()
    tasks = []
    for i in range(args.hold):
        # Paced opening: a burst of thousands of connections measures accept(), not holding.
        delay = t_open + i / args.rate - perf()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(open_one()))
    await asyncio.gather(*tasks)
    deadline = perf() + args.timeout
    while perf() < deadline:
        pending = [s for s in hold_samples if not s.error and not s.first_token and not s.end]
        if not pending:
            break
        await asyncio.sleep(0.05)
    opened = [s for s in hold_samples if s.first_token and not s.error and not s.end]
    open_seconds = perf() - t_open
    # A fixed number of probes, every one counted (a window could miss probes that a loaded server answers late).
    args.requests = args.probes
    # A probe answered after seconds has failed the level already; three such probes are enough to say so.
    args.timeout, args.max_timeouts = args.probe_timeout, 3
    probe = await run_load(spec, args) if opened else report([], 1.0, 0.0)
    still_open = sum(1 for c in holders if c.transport is not None and c.parser is not None)
    for conn in holders:
        conn.abort()
    opened_ids = {id(s) for s in opened}
    hold_ttft = [round((s.first_token - s.start) * 1000, 4) for s in opened]
    return {
        "hold_requested": args.hold,
        "hold_opened": len(opened),
        "hold_still_open_after_probe": still_open,
        "hold_failed": len(hold_samples) - len(opened),
        "hold_errors": _error_counts([s for s in hold_samples if id(s) not in opened_ids]),
        "hold_open_seconds": round(open_seconds, 3),
        "hold_ttft_ms": summarize(hold_ttft),
        "probe": probe,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark load generator (see the module docstring).")
    parser.add_argument("--request-file", required=True)
    parser.add_argument("--output", help="write the JSON result here instead of standard output")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--requests", type=int, default=0, help="send exactly this many requests instead")
    parser.add_argument("--marker", default="content_block_delta", help="first-token marker in the body")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--summary-only", action="store_true", help="percentiles instead of every sample")
    parser.add_argument("--hold", type=int, default=0, help="hold mode: streams to keep open while probing")
    parser.add_argument("--hold-body-file", help="hold mode: the held streams' request (same format)")
    parser.add_argument("--watch", action="append", default=[], help="name=pid+pid: report these processes' CPU")
    parser.add_argument("--probes", type=int, default=30, help="hold mode: probe streams sent while holding")
    parser.add_argument("--probe-timeout", type=float, default=5.0, help="hold mode: per probe")
    parser.add_argument("--rate", type=float, default=200.0, help="hold mode: streams opened per second")
    args = parser.parse_args(argv)
    raise_nofile_limit()
    install_uvloop()
    spec = json.loads(Path(args.request_file).read_text())
    if args.hold:
        hold_spec = json.loads(Path(args.hold_body_file or args.request_file).read_text())
        result = asyncio.run(run_hold(spec, hold_spec, args))
    else:
        result = asyncio.run(run_load(spec, args))
    text = json.dumps(result)
    if args.output:
        # A file, not a pipe: uvloop can leave the standard streams non-blocking, and a large result written to a
        # full pipe would be cut short.
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
