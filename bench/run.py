"""The hot-path benchmark: DIRECT, FLOOR, LYNKR and LITELLM side by side, interleaved, in one run (issue 10).

    .venv/bin/python bench/run.py            # the full run (30-45 min on 2 cores); `make bench` runs this
    .venv/bin/python bench/run.py --quick    # a smoke run of about five minutes

Targets (all fed the same Claude-Code-sized /v1/messages body, streaming and not, by bench/loadgen.py):
- direct: the mock upstream's own Anthropic endpoint, the physical limit of this machine and client;
- floor:  an empty django-ninja async endpoint in the Lynkr server process (gateway/bench_floor.py);
- lynkr:  ``lynkr serve`` (Daphne), Anthropic in, OpenAI chat out to the mock, accounting on, one process;
- litellm: the LiteLLM proxy (its own venv), one worker, no database, the same mock behind it.
``--servers daphne,uvicorn,granian`` adds lynkr-<server> / floor-<server> for each other ASGI server.

Also: start to first answered request, RSS over ``--soak-requests`` requests, and the largest number of open
streams one process holds while new streams still get their first token in under 100 ms p99 (``--ramp``).
Results: bench/results/hotpath-<date>.json and .md (see bench/README.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stats
import targets as T
from http1 import raise_nofile_limit
from mock_upstream import HOLD_MARKER
from phases import Runner, Target, csv, run_cells, run_ramp, run_soak

RESULTS = T.BENCH / "results"
DEFAULT_BODY = T.ROOT / "tests" / "fixtures" / "claude_code" / "2.1.197-turn2.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Hot-path benchmark against LiteLLM (bench/README.md).")
    p.add_argument("--quick", action="store_true", help="short smoke run: 2 s cells, 1 round, small soak and ramp")
    p.add_argument("--targets", default="direct,floor,lynkr,litellm")
    p.add_argument("--servers", default="daphne", help="ASGI servers for lynkr/floor: daphne,uvicorn,granian")
    p.add_argument("--concurrency", default="1,16,64")
    p.add_argument("--modes", default="json,stream")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per cell and round")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each cell")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (target order rotates each round)")
    p.add_argument("--body", type=Path, default=DEFAULT_BODY, help="a Claude Code /v1/messages body (JSON)")
    p.add_argument("--mock-chunks", type=int, default=20)
    p.add_argument("--mock-text-bytes", type=int, default=600)
    p.add_argument("--mock-delay-ms", type=float, default=0.0)
    p.add_argument("--mock-interval-ms", type=float, default=0.0)
    p.add_argument("--soak-requests", type=int, default=100_000, help="RSS soak length (0 skips the soak)")
    p.add_argument("--soak-targets", default="lynkr")
    p.add_argument("--soak-concurrency", type=int, default=16)
    p.add_argument("--soak-samples", type=int, default=20)
    p.add_argument("--ramp", default="100,250,500,1000,1500,2000,3000,4000", help="held-stream levels ('' skips)")
    p.add_argument("--ramp-targets", default="lynkr,litellm")
    p.add_argument("--ramp-rate", type=float, default=50.0, help="held streams opened per second (< throughput)")
    p.add_argument("--ramp-probe-concurrency", type=int, default=1, help="connections probing TTFT")
    p.add_argument("--ramp-probes", type=int, default=50, help="probe streams per level")
    p.add_argument("--ramp-ttft-ms", type=float, default=100.0)
    p.add_argument("--lynkr-env", action="append", default=[], metavar="NAME=VALUE", help="extra Lynkr setting")
    p.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    p.add_argument("--cpu-server", type=int, default=0, help="CPU for the server under test")
    p.add_argument("--cpu-client", type=int, default=1, help="CPU for the mock and the load generator")
    p.add_argument("--label", default="", help="a line printed at the top of the report (e.g. PRELIMINARY)")
    p.add_argument("--out", type=Path, help="results path without extension (default bench/results/hotpath-<date>)")
    p.add_argument("--no-install", action="store_true", help="skip LiteLLM if its venv is missing")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, databases)")
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.rounds = 2.0, 0.5, 1
        args.soak_requests = min(args.soak_requests, 2000)
        args.soak_samples = min(args.soak_samples, 5)
        args.ramp = "50,200" if args.ramp == p.get_default("ramp") else args.ramp
        args.ramp_probes = min(args.ramp_probes, 20)
    return args


def capacity_env(args: argparse.Namespace) -> dict[str, str]:
    """The ramp measures how many streams one process holds. Lynkr's shedding threshold and upstream pool (1000 each
    by default: a safety limit an operator sets, docs/operations.md) would end it at 1000, so the run lifts both above
    its highest level; ``--lynkr-env`` overrides, and the report lists what was set."""
    levels = [int(level) for level in csv(args.ramp)]
    if not levels or "lynkr" not in csv(args.ramp_targets):
        return {}
    ceiling = str(max(levels) + 500)
    return {"LOAD_SHEDDING_ACTIVE_REQUESTS_THRESHOLD": ceiling, "LYNKR_UPSTREAM_MAX_CONNECTIONS": ceiling}


def load_bodies(path: Path) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The body as sent streaming, non-streaming (Claude Code's fallback: no ``stream`` key) and held."""
    body = json.loads(path.read_text())
    stream = {**body, "stream": True}
    plain = {k: v for k, v in body.items() if k != "stream"}
    held = json.loads(json.dumps(stream))
    last = held["messages"][-1]
    block = last["content"][-1] if isinstance(last["content"], list) else None
    marker = " " + HOLD_MARKER.decode()
    if block is None:
        last["content"] += marker
    elif isinstance(block.get("content"), str):
        block["content"] += marker  # a tool_result
    else:
        block["text"] = block.get("text", "") + marker
    encoded = {name: json.dumps(b, separators=(",", ":")).encode() for name, b in [("json", plain), ("stream", stream)]}
    encoded["hold"] = json.dumps(held, separators=(",", ":")).encode()
    meta = {
        "body_file": str(path.relative_to(T.ROOT)) if path.is_relative_to(T.ROOT) else str(path),
        "body_bytes": len(encoded["stream"]),
        "tools": len(body.get("tools", [])),
        "system_blocks": len(body["system"]) if isinstance(body.get("system"), list) else 1,
        "messages": len(body.get("messages", [])),
        "model": body.get("model", ""),
    }
    return encoded, meta


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def start_targets(
    runner: Runner, names: list[str], servers: list[str], mock: T.Proc, model: str, notes: list[str]
) -> tuple[dict[str, Target], dict[str, float], dict[str, Any]]:
    args = runner.args
    found: dict[str, Target] = {}
    startup: dict[str, float] = {}
    info: dict[str, Any] = {}
    probe = runner.bodies["json"]
    if "direct" in names:
        headers = {**T.CLAUDE_CODE_HEADERS, "x-api-key": T.UPSTREAM_KEY}
        found["direct"] = Target("direct", mock.port, "/v1/messages?beta=true", headers, mock, "direct")
    for server in servers if ("lynkr" in names or "floor" in names) else []:
        suffix = "" if server == "daphne" else f"-{server}"
        extra_env = {**capacity_env(args), **dict(item.split("=", 1) for item in args.lynkr_env)}
        setup = T.LynkrSetup(server, runner.workdir / f"lynkr-{server}", mock.port, extra_env)
        setup.prepare()
        proc, seconds = T.start_lynkr(setup, runner.workdir, runner.cpu_server, probe)
        headers = {**T.CLAUDE_CODE_HEADERS, "x-api-key": setup.api_key}
        if "lynkr" in names:
            found[f"lynkr{suffix}"] = Target(
                f"lynkr{suffix}", setup.port, "/v1/messages?beta=true", headers, proc, "lynkr"
            )
            startup[f"lynkr{suffix}"] = round(seconds, 3)
        if "floor" in names:
            path = f"/bench/floor/v1/messages?beta=true&chunks={args.mock_chunks}"
            found[f"floor{suffix}"] = Target(f"floor{suffix}", setup.port, path, headers, proc, "floor")
            floor_status, _ = T.http_call(setup.port, "POST", path, probe, headers)
            if floor_status != 200:
                raise RuntimeError(f"FLOOR endpoint answered {floor_status}: is LYNKR_BENCH_FLOOR honoured?")
        info[f"lynkr{suffix}"] = {"server": server, "log": str(proc.log_path), "env_extra": extra_env}
    if "litellm" in names:
        if not T.litellm_ready() and not args.no_install:
            print(f"bench: installing litellm[proxy]=={T.LITELLM_VERSION} into {T.LITELLM_VENV}", flush=True)
            T.litellm_install()
        if T.litellm_ready():
            proc, seconds, key = T.start_litellm(runner.workdir, runner.cpu_server, mock.port, model, probe)
            headers = {**T.CLAUDE_CODE_HEADERS, "x-api-key": key}
            found["litellm"] = Target("litellm", proc.port, "/v1/messages?beta=true", headers, proc, "litellm")
            startup["litellm"] = round(seconds, 3)
            info["litellm"] = {"version": T.litellm_version(), "venv": str(T.LITELLM_VENV)}
        else:
            notes.append(f"LITELLM skipped: no venv at {T.LITELLM_VENV} (run without --no-install to create it)")
    return found, startup, info


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_nofile_limit()
    started = dt.datetime.now(dt.UTC)
    bodies, body_meta = load_bodies(args.body)
    workdir = Path(tempfile.mkdtemp(prefix="lynkr-bench-"))
    names = csv(args.targets)
    notes: list[str] = []
    meta: dict[str, Any] = {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "label": args.label,
        "command": " ".join(shlex.quote(a) for a in [".venv/bin/python", "bench/run.py", *(argv or sys.argv[1:])]),
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "loadavg_before": loadavg(),
        "python": sys.version.split()[0],
        "lynkr_commit": subprocess.run(
            ["git", "-C", str(T.ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip(),
        "duration": args.duration,
        "warmup": args.warmup,
        "rounds": args.rounds,
        "workdir": str(workdir),
        **body_meta,
    }
    runner = Runner(args, workdir, bodies)
    meta.update(
        {"pinned": runner.pin, "cpu_server": runner.cpu_server, "cpu_client": runner.cpu_client, "notes": notes}
    )
    mock_config = {
        "chunks": args.mock_chunks,
        "text_bytes": args.mock_text_bytes,
        "delay_ms": args.mock_delay_ms,
        "interval_ms": args.mock_interval_ms,
    }
    meta["mock_config"] = mock_config
    procs: list[T.Proc] = []
    result: dict[str, Any] = {"meta": meta}
    try:
        mock = T.start_mock(workdir, runner.cpu_client, T.clean_env(), mock_config)
        procs.append(mock)
        found, startup, info = start_targets(runner, names, csv(args.servers), mock, body_meta["model"], notes)
        procs += [t.proc for t in found.values() if t.proc is not mock]
        meta["targets"] = info
        result["startup"] = startup
        print(f"bench: targets {', '.join(found)}; start-up {startup}; work dir {workdir}", flush=True)
        cells = run_cells(runner, found, mock)
        result["cells"] = cells
        if "direct" in cells:
            result["mock_ceiling"] = {mode: max(c["rps"] for c in by.values()) for mode, by in cells["direct"].items()}
        result["rss"] = {
            name: {"peak_mb": round(t.proc.peak_rss_mb(), 1), "tree_rss_mb": round(t.proc.tree_rss_mb(), 1)}
            for name, t in found.items()
        }
        result["derived"] = stats.derive(cells)
        if args.soak_requests:
            result["soak"] = {
                name: run_soak(runner, found[name], mock) for name in csv(args.soak_targets) if name in found
            }
        if csv(args.ramp):
            result["ramp"] = {
                name: run_ramp(runner, found[name], mock) for name in csv(args.ramp_targets) if name in found
            }
        for name, t in found.items():  # after the soak and the ramp
            result["rss"][name]["peak_mb_end"] = round(t.proc.peak_rss_mb(), 1)
    except BaseException as exc:
        # What was measured is still written, marked incomplete; the work directory (logs) is kept.
        notes.append(f"INCOMPLETE: the run stopped with {exc!r}; logs in {workdir}")
        args.keep = True
        raise
    finally:
        for proc in reversed(procs):
            proc.stop()
        meta["loadavg_after"] = loadavg()
        meta["seconds"] = round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1)
        if "cells" in result:
            write_results(args.out or RESULTS / f"hotpath-{started.strftime('%Y-%m-%d')}", result)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


def write_results(out: Path, result: dict[str, Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    result.setdefault("derived", stats.derive(result["cells"]))
    Path(f"{out}.json").write_text(json.dumps(result, indent=1) + "\n")
    Path(f"{out}.md").write_text(stats.markdown(result) + "\n")
    print(f"bench: wrote {out}.json and {out}.md", flush=True)


if __name__ == "__main__":
    sys.exit(main())
