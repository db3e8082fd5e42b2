"""Reshaping aggregated usage for charts and tables (pure: no Django).

The selectors return few, already aggregated rows (one per day and user/key/provider/model combination); these
functions fold them into the series a chart draws, keeping the top names and summing the rest into "other" so a
chart never has more colours than a reader can tell apart.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from gateway.dashboard.format import usd_money
from gateway.dashboard.window import bucket_floor
from gateway.metrics import percentiles

DIMENSIONS = {"user": "user", "key": "API key", "model": "model", "provider": "provider"}
METRICS = ("cost", "tokens", "requests")
OTHER = "other"


@dataclass(frozen=True, slots=True)
class DailyRow:
    """Request usage of one UTC day for one (user, key, provider, client model)."""

    day: date
    user: str
    key: str
    provider: str
    model: str
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    unpriced: int  # requests whose cost is unknown (no price configured): not counted as $0 in cost_usd


@dataclass(frozen=True, slots=True)
class Total:
    name: str
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    unpriced: int

    @property
    def cost_text(self) -> str:
        return usd_money(self.cost_usd)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def _name(row: DailyRow, dimension: str) -> str:
    name: str = getattr(row, dimension)
    return name


def _metric(row: DailyRow, metric: str) -> float:
    if metric == "cost":
        return float(row.cost_usd)
    if metric == "tokens":
        return float(row.input_tokens + row.output_tokens)
    return float(row.requests)


def breakdown_by(
    *, rows: Iterable[DailyRow], days: Sequence[date], dimension: str, metric: str, top: int = 6
) -> list[tuple[str, tuple[float, ...]]]:
    """(name, value per day) for the ``top`` names by total, then "other"; names with a zero total are left out."""
    index = {day: i for i, day in enumerate(days)}
    per_name: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(days))
    for row in rows:
        if row.day in index:
            per_name[_name(row, dimension)][index[row.day]] += _metric(row, metric)
    ranked = sorted(((sum(v), name) for name, v in per_name.items() if sum(v) > 0), key=lambda t: (-t[0], t[1]))
    kept = [name for _, name in ranked[:top]]
    out = [(name, tuple(per_name[name])) for name in kept]
    rest = [name for _, name in ranked[top:]]
    if rest:
        other = [sum(per_name[name][i] for name in rest) for i in range(len(days))]
        out.append((OTHER if OTHER not in kept else f"{OTHER} ({len(rest)})", tuple(other)))
    return out


def totals_by(*, rows: Iterable[DailyRow], dimension: str, top: int = 10) -> list[Total]:
    """Totals per name of ``dimension``, most expensive first (then most tokens), at most ``top``."""
    sums: dict[str, list[int | Decimal]] = {}
    for row in rows:
        acc = sums.setdefault(_name(row, dimension), [0, 0, 0, 0, Decimal(0), 0])
        acc[0] += row.requests
        acc[1] += row.errors
        acc[2] += row.input_tokens
        acc[3] += row.output_tokens
        acc[4] += row.cost_usd
        acc[5] += row.unpriced
    totals = [
        Total(name, int(a[0]), int(a[1]), int(a[2]), int(a[3]), Decimal(a[4]), int(a[5])) for name, a in sums.items()
    ]
    totals.sort(key=lambda t: (-t.cost_usd, -(t.input_tokens + t.output_tokens), t.name))
    return totals[:top]


def latency_by_bucket(
    *, samples: Iterable[tuple[datetime, int]], buckets: Sequence[datetime], bucket: str
) -> tuple[tuple[float | None, ...], tuple[float | None, ...], int]:
    """Nearest-rank p50 and p95 (the definition /metrics/observability uses) of the latencies in each bucket
    (None where a bucket has none), and how many samples there were."""
    grouped: dict[datetime, list[int]] = defaultdict(list)
    count = 0
    for when, latency in samples:
        grouped[bucket_floor(when, bucket)].append(latency)
        count += 1
    p50: list[float | None] = []
    p95: list[float | None] = []
    for start in buckets:
        values = percentiles(grouped.get(start, []), (50, 95))
        p50.append(None if values["p50"] is None else float(values["p50"]))
        p95.append(None if values["p95"] is None else float(values["p95"]))
    return tuple(p50), tuple(p95), count
