"""The pure reshaping of aggregated usage into chart series and totals."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from gateway.dashboard.pivot import DailyRow, breakdown_by, latency_by_bucket, totals_by


def _row(day: int, user: str, cost: str, tokens: int = 10, requests: int = 1) -> DailyRow:
    return DailyRow(date(2026, 3, day), user, "key", "prov", "model", requests, 0, tokens, 0, Decimal(cost), 0)


def test_breakdown_keeps_the_top_names_and_sums_the_rest() -> None:
    days = [date(2026, 3, 1), date(2026, 3, 2)]
    rows = [_row(1, "a", "3"), _row(2, "a", "1"), _row(1, "b", "2"), _row(2, "c", "0.5"), _row(2, "d", "0.25"),
            _row(2, "z", "0"), _row(9, "a", "100")]  # fmt: skip
    out = breakdown_by(rows=rows, days=days, dimension="user", metric="cost", top=2)
    assert out == [("a", (3.0, 1.0)), ("b", (2.0, 0.0)), ("other", (0.0, 0.75))]  # z spent nothing; day 9 is outside
    tokens = breakdown_by(rows=rows, days=days, dimension="user", metric="tokens", top=10)
    assert [name for name, _ in tokens] == ["a", "b", "c", "d", "z"]


def test_totals_sort_by_spend() -> None:
    rows = [_row(1, "a", "1", tokens=5), _row(2, "a", "1", tokens=5), _row(1, "b", "3", tokens=1)]
    totals = totals_by(rows=rows, dimension="user")
    assert [(t.name, t.requests, t.input_tokens, t.cost_usd) for t in totals] == [
        ("b", 1, 1, Decimal(3)),
        ("a", 2, 10, Decimal(2)),
    ]
    assert totals[0].cost_text == "$3.00"


def test_latency_percentiles_per_bucket() -> None:
    buckets = [datetime(2026, 3, 18, h, tzinfo=UTC) for h in (10, 11, 12)]
    samples = [(datetime(2026, 3, 18, 10, m, tzinfo=UTC), ms) for m, ms in enumerate(range(100, 1100, 100))]
    samples.append((datetime(2026, 3, 18, 12, 59, tzinfo=UTC), 42))
    p50, p95, count = latency_by_bucket(samples=samples, buckets=buckets, bucket="hour")
    assert (p50, p95, count) == ((500.0, None, 42.0), (1000.0, None, 42.0), 11)
