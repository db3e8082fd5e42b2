"""The measured phases of bench/run.py: interleaved cells, the RSS soak and the open-streams ramp.

Each measurement is one bench/loadgen.py process (pinned to the client CPU), given the target's request and the
pids whose CPU use it reports over its own measured window.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import stats
import targets as T


@dataclass
class Target:
    name: str
    port: int
    path: str
    headers: dict[str, str]
    proc: T.Proc
    kind: str  # direct | floor | lynkr | litellm


def csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


class Runner:
    def __init__(self, args: argparse.Namespace, workdir: Path, bodies: dict[str, bytes]) -> None:
        self.args = args
        self.workdir = workdir
        self.bodies = bodies
        self.pin = not args.no_pin and (os.cpu_count() or 1) > max(args.cpu_server, args.cpu_client)
        self.cpu_server = args.cpu_server if self.pin else None
        self.cpu_client = args.cpu_client if self.pin else None
        self.request_files: dict[tuple[str, str], Path] = {}

    def request_file(self, target: Target, mode: str) -> Path:
        key = (target.name, mode)
        if key not in self.request_files:
            path = self.workdir / f"request-{target.name}-{mode}.json"
            spec = {
                "host": "127.0.0.1",
                "port": target.port,
                "path": target.path,
                "headers": target.headers,
                "body": self.bodies[mode].decode(),
            }
            path.write_text(json.dumps(spec))
            self.request_files[key] = path
        return self.request_files[key]

    def loadgen(self, target: Target, mode: str, extra: list[str], mock: T.Proc) -> dict[str, Any]:
        argv = [sys.executable, str(T.BENCH / "loadgen.py"), "--request-file", str(self.request_file(target, mode))]
        server_pids = "+".join(str(p) for p in T.process_tree(target.proc.popen.pid))
        argv += ["--watch", f"server={server_pids}", "--watch", f"mock={mock.popen.pid}", *extra]
        if self.cpu_client is not None:
            argv = ["taskset", "-c", str(self.cpu_client), *argv]
        output = self.workdir / "loadgen-result.json"
        output.unlink(missing_ok=True)
        done = subprocess.run([*argv, "--output", str(output)], capture_output=True, text=True, timeout=3600)
        if done.returncode != 0 or not output.exists():
            raise RuntimeError(f"loadgen failed for {target.name}/{mode}: {done.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(output.read_text())
        return result

    def cell(self, target: Target, mode: str, conc: int, mock: T.Proc) -> dict[str, Any]:
        args = self.args
        extra = ["--concurrency", str(conc), "--duration", str(args.duration), "--warmup", str(args.warmup)]
        before = mock_stats(mock)
        result = self.loadgen(target, mode, extra, mock)
        after = mock_stats(mock)
        result["rss_mb"] = round(target.proc.rss_mb(), 1)
        # Every gateway request must reach the upstream (no cache, no short cut): upstream calls in the whole cell
        # (warm-up included) can only exceed the requests counted in its window.
        api = "anthropic" if target.kind == "direct" else "openai_chat"
        result["upstream_calls"] = after[api] - before[api] if target.kind != "floor" else 0
        if target.kind != "floor" and result["upstream_calls"] < result["requests"]:
            raise RuntimeError(
                f"{target.name}: {result['requests']} answers but {result['upstream_calls']} upstream calls"
            )
        return result


def mock_stats(mock: T.Proc) -> dict[str, int]:
    _, body = T.http_call(mock.port, "GET", "/__mock/stats")
    stats_: dict[str, int] = json.loads(body)
    return stats_


def run_cells(runner: Runner, found: dict[str, Target], mock: T.Proc) -> dict[str, Any]:
    args = runner.args
    concs = [int(c) for c in csv(args.concurrency)]
    modes = csv(args.modes)
    raw: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = {}
    order = list(found)
    for name in order:  # a few requests each, so first-call costs do not land in round 1
        for mode in modes:
            runner.loadgen(found[name], mode, ["--requests", "20", "--concurrency", "2"], mock)
    for rnd in range(args.rounds):
        rotated = order[rnd % len(order) :] + order[: rnd % len(order)]
        for mode in modes:
            for conc in concs:
                for name in rotated:
                    one = runner.cell(found[name], mode, conc, mock)
                    raw.setdefault(name, {}).setdefault(mode, {}).setdefault(str(conc), []).append(one)
                    lat = stats.summarize(one["latency_ms"])
                    print(
                        f"bench: round {rnd + 1}/{args.rounds} {mode:6} c={conc:<3} {name:16} {one['rps']:9.1f} req/s"
                        f"  p50 {lat.get('p50', float('nan')):8.2f} ms  errors {sum(one['errors'].values())}"
                        f"  cpu {one.get('cpu')}",
                        flush=True,
                    )
    cells: dict[str, Any] = {}
    for name, modes_ in raw.items():
        for mode, by_conc in modes_.items():
            for conc, rounds in by_conc.items():
                pooled = stats.pool_rounds(rounds)
                pooled["rss_mb_after"] = rounds[-1].get("rss_mb")
                cells.setdefault(name, {}).setdefault(mode, {})[conc] = pooled
    return cells


def run_soak(runner: Runner, target: Target, mock: T.Proc) -> dict[str, Any]:
    args = runner.args
    per = max(1, args.soak_requests // args.soak_samples)
    samples: list[tuple[int, float]] = []
    errors = 0
    done = 0
    t0 = time.monotonic()
    for i in range(args.soak_samples):
        mode = "stream" if i % 2 else "json"  # both paths, alternating
        extra = ["--requests", str(per), "--concurrency", str(args.soak_concurrency), "--summary-only"]
        result = runner.loadgen(target, mode, extra, mock)
        errors += sum(result["errors"].values())
        done += result["requests"]
        samples.append((done, round(target.proc.rss_mb(), 1)))
        print(f"bench: soak {target.name} {done} requests, RSS {samples[-1][1]} MB", flush=True)
    first, last = samples[0][1], samples[-1][1]
    growth = (last - first) / first * 100 if first else 0.0
    return {
        "requests_total": done,
        "concurrency": args.soak_concurrency,
        "seconds": round(time.monotonic() - t0, 1),
        "errors": errors,
        "samples": samples,
        "rss_first_mb": first,
        "rss_last_mb": last,
        "growth_pct": round(growth, 2),
        "flat": abs(growth) <= 10.0,
        "peak_mb": round(target.proc.peak_rss_mb(), 1),
    }


def run_ramp(runner: Runner, target: Target, mock: T.Proc) -> dict[str, Any]:
    args = runner.args
    hold_file = runner.request_file(target, "hold")
    levels: list[dict[str, Any]] = []
    max_ok = 0
    for level in [int(v) for v in csv(args.ramp)]:
        timeout = level / args.ramp_rate + 30
        extra = ["--hold", str(level), "--hold-body-file", str(hold_file), "--rate", str(args.ramp_rate)]
        extra += ["--concurrency", str(args.ramp_probe_concurrency)]
        extra += ["--probes", str(args.ramp_probes)]
        extra += ["--timeout", str(timeout)]
        result = runner.loadgen(target, "stream", extra, mock)
        probe = result["probe"]
        if isinstance(probe.get("ttft_ms"), list):
            for name in ("latency_ms", "ttfb_ms", "ttft_ms"):
                probe[name] = stats.summarize(probe[name])
        p99 = probe["ttft_ms"].get("p99")
        ok = (
            result["hold_opened"] == level
            and not probe["errors"]
            and p99 is not None
            and p99 < args.ramp_ttft_ms
            and result["hold_still_open_after_probe"] >= level * 0.99
        )
        result["ok"] = ok
        result["rss_mb"] = round(target.proc.peak_rss_mb(), 1)
        levels.append(result)
        print(
            f"bench: ramp {target.name} held {result['hold_opened']}/{level} probe TTFT p99 {p99} ms ok={ok}",
            flush=True,
        )
        # The held streams were hung up on: a gateway should close its upstream streams too. Measured, and
        # waited for (up to 10 s) before the next level.
        hung_up = time.monotonic()
        while mock_stats(mock)["open_streams"] and time.monotonic() < hung_up + 10:
            time.sleep(0.1)
        result["upstream_open_10s_after_hangup"] = mock_stats(mock)["open_streams"]
        result["upstream_close_seconds"] = round(time.monotonic() - hung_up, 2)
        time.sleep(1.0)
        if not ok:
            break
        max_ok = level
    return {"ttft_limit_ms": args.ramp_ttft_ms, "rate_per_s": args.ramp_rate, "max_ok": max_ok, "levels": levels}
