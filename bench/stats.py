"""Pure aggregation for the hot-path benchmark: percentiles, pooling rounds, derived figures, the Markdown report."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks (numpy's default method)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def summarize(values: Sequence[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "mean": round(sum(values) / len(values), 4),
        "p50": round(percentile(values, 50), 4),
        "p95": round(percentile(values, 95), 4),
        "p99": round(percentile(values, 99), 4),
        "max": round(max(values), 4),
    }


def pool_rounds(rounds: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One cell from its interleaved rounds: samples pooled, throughput = all requests / all measured seconds."""
    requests = 0
    seconds = 0.0
    errors: dict[str, int] = {}
    latency: list[float] = []
    ttfb: list[float] = []
    ttft: list[float] = []
    cpu: dict[str, list[float]] = {}
    rps_per_round: list[float] = []
    upstream_calls = 0
    count = 0
    for one in rounds:
        count += 1
        requests += one["requests"]
        upstream_calls += one.get("upstream_calls", 0)
        seconds += one["seconds"]
        rps_per_round.append(one["rps"])
        for key, n in one.get("errors", {}).items():
            errors[key] = errors.get(key, 0) + n
        latency += one.get("latency_ms", [])
        ttfb += one.get("ttfb_ms", [])
        ttft += one.get("ttft_ms", [])
        for name, value in one.get("cpu", {}).items():
            cpu.setdefault(name, []).append(value)
    return {
        "rounds": count,
        "requests": requests,
        "seconds": round(seconds, 3),
        "rps": round(requests / seconds, 2) if seconds else 0.0,
        "rps_per_round": rps_per_round,
        "errors": errors,
        "upstream_calls": upstream_calls,  # whole cells, warm-up included
        "latency_ms": summarize(latency),
        "ttfb_ms": summarize(ttfb),
        "ttft_ms": summarize(ttft),
        # Cores used during the measured windows (1.0 = one core busy): server, mock, load generator.
        "cpu": {name: round(sum(v) / len(v), 3) for name, v in cpu.items()},
    }


def _get(cells: dict[str, Any], target: str, mode: str, conc: int) -> dict[str, Any] | None:
    cell: dict[str, Any] | None = cells.get(target, {}).get(mode, {}).get(str(conc))
    return cell


def _p(cell: dict[str, Any] | None, metric: str, q: str = "p50") -> float:
    if not cell:
        return math.nan
    value = cell.get(metric, {}).get(q)
    return float(value) if value is not None else math.nan


def derive(cells: dict[str, Any], baseline: str = "direct", peer: str = "litellm") -> dict[str, Any]:
    """Added latency over DIRECT, LYNKR - FLOOR, and ratios against the peer, per Lynkr server variant."""
    out: dict[str, Any] = {}
    for target in cells:
        if not target.startswith("lynkr"):
            continue
        floor = target.replace("lynkr", "floor", 1)
        row: dict[str, Any] = {}
        for mode in ("json", "stream"):
            metric = "latency_ms" if mode == "json" else "ttft_ms"
            c1 = _p(_get(cells, target, mode, 1), metric)
            direct = _p(_get(cells, baseline, mode, 1), metric)
            added = c1 - direct  # NaN when a target was not measured: reported as "-"
            peer_added = _p(_get(cells, peer, mode, 1), metric) - direct
            row[f"{mode}_added_p50_ms_c1"] = _round(added)
            row[f"{mode}_own_work_p50_ms_c1"] = _round(c1 - _p(_get(cells, floor, mode, 1), metric))
            row[f"{mode}_peer_added_p50_ms_c1"] = _round(peer_added)
            row[f"{mode}_added_ratio_vs_peer"] = _round(added / peer_added if peer_added else math.nan)
            best = max((c.get("rps", 0.0) for c in cells.get(target, {}).get(mode, {}).values()), default=0.0)
            peer_best = max((c.get("rps", 0.0) for c in cells.get(peer, {}).get(mode, {}).values()), default=0.0)
            row[f"{mode}_best_rps"] = best
            row[f"{mode}_throughput_ratio_vs_peer"] = _round(best / peer_best, 2) if peer_best else None
            c64 = _get(cells, target, mode, 64)
            row[f"{mode}_p99_over_p50_c64"] = _round(_p(c64, "latency_ms", "p99") / _p(c64, "latency_ms"), 2)
        out[target] = row
    return out


def _round(value: float, digits: int = 3) -> float | None:
    if math.isnan(value) or math.isinf(value):
        return None
    return round(value, digits)


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.{digits}f}"
    return str(value)


def cells_table(cells: dict[str, Any], mode: str, rss: dict[str, Any]) -> list[str]:
    stream = mode == "stream"
    head = "| target | c | req/s | p50 ms | p95 ms | p99 ms |"
    head += " TTFT p50 | TTFT p99 |" if stream else ""
    head += " errors | server CPU | mock CPU | loadgen CPU | peak RSS MB |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for target, modes in cells.items():
        for conc, cell in sorted(modes.get(mode, {}).items(), key=lambda kv: int(kv[0])):
            lat = cell["latency_ms"]
            row = f"| {target} | {conc} | {_fmt(cell['rps'], 1)} | {_fmt(lat.get('p50'))} | {_fmt(lat.get('p95'))} |"
            row += f" {_fmt(lat.get('p99'))} |"
            if stream:
                row += f" {_fmt(cell['ttft_ms'].get('p50'))} | {_fmt(cell['ttft_ms'].get('p99'))} |"
            errors = sum(cell["errors"].values())
            cpu = cell.get("cpu", {})
            peak = rss.get(target, {}).get("peak_mb")
            row += f" {errors} | {_fmt(cpu.get('server'))} | {_fmt(cpu.get('mock'))} | {_fmt(cpu.get('loadgen'))} |"
            row += f" {_fmt(peak, 0)} |"
            lines.append(row)
    return lines


def _settings_lines(meta: dict[str, Any]) -> list[str]:
    """The Lynkr settings the run changed from their defaults (bench/run.py ``capacity_env``, ``--lynkr-env``)."""
    changed = {
        name: info["env_extra"]
        for name, info in (meta.get("targets") or {}).items()
        if isinstance(info, dict) and info.get("env_extra")
    }
    if not changed:
        return []
    parts = [f"{name}: " + ", ".join(f"`{k}={v}`" for k, v in env.items()) for name, env in changed.items()]
    return ["Lynkr settings changed for this run: " + "; ".join(parts) + ".", ""]


def markdown(result: dict[str, Any]) -> str:
    meta = result["meta"]
    lines = [f"# Hot-path benchmark {meta['date']}", ""]
    if meta.get("label"):
        lines += [f"**{meta['label']}**", ""]
    lines += [
        f"Command: `{meta['command']}`",
        "",
        f"Machine: {meta['cpus']} CPUs ({meta['cpu_model']}), load average before/after: "
        f"{meta['loadavg_before']} / {meta['loadavg_after']}. Server pinned to CPU {meta['cpu_server']}, "
        f"mock and load generator to CPU {meta['cpu_client']}."
        if meta.get("pinned")
        else f"Machine: {meta['cpus']} CPUs ({meta['cpu_model']}), no CPU pinning; load average before/after: "
        f"{meta['loadavg_before']} / {meta['loadavg_after']}.",
        "",
        f"Body: {meta['body_file']} ({meta['body_bytes']} bytes, {meta['tools']} tools, {meta['system_blocks']} "
        f"system blocks, {meta['messages']} messages). Mock: {meta['mock_config']}. "
        f"Each cell: {meta['warmup']} s warm-up + {meta['duration']} s measured, {meta['rounds']} interleaved rounds.",
        "",
        *_settings_lines(meta),
        "Latency is the whole response; TTFT is the time to the first `content_block_delta` byte (first token). "
        "CPU columns are cores used during the measured window (1.00 = one core saturated).",
        "",
    ]
    for mode, title in (("json", "Non-streaming"), ("stream", "Streaming")):
        lines += [f"## {title}", "", *cells_table(result["cells"], mode, result.get("rss", {})), ""]
    derived = result.get("derived") or {}
    if derived:
        lines += ["## Derived (c=1 p50; stream figures use TTFT)", ""]
        keys = sorted({k for row in derived.values() for k in row})
        lines += ["| figure | " + " | ".join(derived) + " |", "|---|" + "---|" * len(derived)]
        for key in keys:
            lines.append(f"| {key} | " + " | ".join(_fmt(row.get(key), 3) for row in derived.values()) + " |")
        lines.append("")
    if result.get("startup"):
        lines += ["## Start to first answered request", "", "| target | seconds |", "|---|---|"]
        lines += [f"| {t} | {_fmt(s, 2)} |" for t, s in result["startup"].items()]
        lines.append("")
    for target, soak in (result.get("soak") or {}).items():
        lines += [f"## RSS over {soak['requests_total']} requests: {target}", ""]
        lines.append(
            f"RSS after warm-up {_fmt(soak['rss_first_mb'], 1)} MB, at the end {_fmt(soak['rss_last_mb'], 1)} MB "
            f"({_fmt(soak['growth_pct'], 1)} %, flat within ±10 %: {soak['flat']}); "
            f"peak {_fmt(soak['peak_mb'], 1)} MB; errors {soak['errors']}."
        )
        lines += ["", "| requests | RSS MB |", "|---|---|"]
        lines += [f"| {done} | {_fmt(mb, 1)} |" for done, mb in soak["samples"]]
        lines.append("")
    for target, ramp in (result.get("ramp") or {}).items():
        lines += [f"## Concurrent open streams: {target}", ""]
        lines.append(f"Held streams with p99 TTFT of new streams < {ramp['ttft_limit_ms']} ms: **{ramp['max_ok']}**.")
        lines += [
            "",
            "| held | opened | open s | held TTFT p99 | held errors | probe TTFT p50 | probe TTFT p99 | probe errors |"
            " upstream open 10 s after hang-up | peak RSS MB | ok |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for level in ramp["levels"]:
            probe = level["probe"]
            lines.append(
                f"| {level['hold_requested']} | {level['hold_opened']} | {_fmt(level['hold_open_seconds'])} |"
                f" {_fmt(level['hold_ttft_ms'].get('p99'))} | {', '.join(level['hold_errors']) or 0} |"
                f" {_fmt(probe['ttft_ms'].get('p50'))} | {_fmt(probe['ttft_ms'].get('p99'))} |"
                f" {sum(probe['errors'].values())} | {level.get('upstream_open_10s_after_hangup', '-')} |"
                f" {_fmt(level.get('rss_mb'), 0)} |"
                f" {level['ok']} |"
            )
        lines.append("")
    if result.get("mock_ceiling"):
        lines += ["## Mock upstream ceiling (DIRECT, best of the concurrencies; mock and client share one core)", ""]
        lines += [f"- {mode}: {_fmt(rps, 0)} req/s" for mode, rps in result["mock_ceiling"].items()]
        lines.append("")
    if meta.get("notes"):
        lines += ["## Notes", "", *[f"- {note}" for note in meta["notes"]], ""]
    return "\n".join(lines)
