"""From selector results to the charts and figures a page shows (the glue between selectors and charts)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.utils.safestring import SafeString, mark_safe

from gateway.dashboard import charts
from gateway.dashboard.burndown import Burndown
from gateway.dashboard.charts import Reference, Series
from gateway.dashboard.format import usd_money
from gateway.dashboard.pivot import DIMENSIONS, DailyRow, Total, breakdown_by, totals_by
from gateway.dashboard.selectors import Bucket, Latency, RuleCount
from gateway.dashboard.window import TimeWindow, bucket_label

GREY = "#8c8c8c"


def _safe(svg: str) -> SafeString:
    # charts.py escapes every piece of text it is given (tested with hostile labels), so its output is markup.
    return mark_safe(svg)  # noqa: S308


@dataclass(frozen=True, slots=True)
class Summary:
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    unpriced: int
    cache_hits: int

    @property
    def cost_text(self) -> str:
        return usd_money(self.cost_usd)

    @property
    def input_text(self) -> str:
        return charts.fmt_number(self.input_tokens)

    @property
    def output_text(self) -> str:
        return charts.fmt_number(self.output_tokens)

    @property
    def error_rate(self) -> float:
        return round(100 * self.errors / self.requests, 1) if self.requests else 0.0

    @property
    def cache_hit_rate(self) -> float:
        return round(100 * self.cache_hits / self.requests, 1) if self.requests else 0.0


def summary_of(buckets: Sequence[Bucket]) -> Summary:
    return Summary(
        requests=sum(b.requests for b in buckets),
        errors=sum(b.errors for b in buckets),
        input_tokens=sum(b.input_tokens for b in buckets),
        output_tokens=sum(b.output_tokens for b in buckets),
        cost_usd=sum((b.cost_usd for b in buckets), Decimal(0)),
        unpriced=sum(b.unpriced for b in buckets),
        cache_hits=sum(b.cache_hits for b in buckets),
    )


def _time_labels(window: TimeWindow) -> list[str]:
    return [bucket_label(start, window.bucket) for start in window.buckets()]


def _tick_every(window: TimeWindow) -> int:
    """Hourly points over several days: one x label per day, at midnight."""
    return 24 if window.bucket == "hour" and len(window.buckets()) > 48 else 0


def _step_name(window: TimeWindow) -> str:
    return "hour (UTC)" if window.bucket == "hour" else "day (UTC)"


def chart_requests(*, buckets: Sequence[Bucket], window: TimeWindow, chart_id: str = "requests") -> SafeString:
    series = [
        Series("requests", tuple(float(b.requests) for b in buckets)),
        Series("errors", tuple(float(b.errors) for b in buckets), color="#e15759"),
    ]
    return _safe(
        charts.line_chart(
            chart_id=chart_id,
            title="Requests and errors",
            labels=_time_labels(window),
            series=series,
            x_label=_step_name(window),
            y_label="requests",
            area=True,
            tick_every=_tick_every(window),
        )
    )


def chart_latency(*, latency: Latency, window: TimeWindow) -> SafeString:
    series = [Series("p50", latency.p50), Series("p95", latency.p95, color="#f28e2b")]
    return _safe(
        charts.line_chart(
            chart_id="latency",
            title="Latency p50 and p95",
            labels=_time_labels(window),
            series=series,
            x_label=_step_name(window),
            y_label="latency",
            fmt=charts.fmt_ms,
            tick_every=_tick_every(window),
        )
    )


def chart_cache(*, buckets: Sequence[Bucket], window: TimeWindow) -> SafeString:
    rate = tuple(100.0 * b.cache_hits / b.requests if b.requests else None for b in buckets)
    if not any(b.cache_hits for b in buckets):
        return _safe(charts.no_data(chart_id="cache", title="Response cache hit rate", message="No cache hits"))
    return _safe(
        charts.line_chart(
            chart_id="cache",
            title="Response cache hit rate",
            labels=_time_labels(window),
            series=[Series("hit rate", rate, color="#59a14f")],
            x_label=_step_name(window),
            y_label="% of requests",
            fmt=charts.fmt_percent,
            tick_every=_tick_every(window),
        )
    )


def chart_spend_tokens(*, buckets: Sequence[Bucket], window: TimeWindow, chart_id: str) -> SafeString:
    """Spend over time as an area (for the user page)."""
    return _safe(
        charts.line_chart(
            chart_id=chart_id,
            title="Spend",
            labels=_time_labels(window),
            series=[Series("spend", tuple(float(b.cost_usd) for b in buckets), color="#b07aa1")],
            x_label=_step_name(window),
            y_label="USD",
            fmt=charts.fmt_usd,
            area=True,
            tick_every=_tick_every(window),
        )
    )


@dataclass(frozen=True, slots=True)
class DimensionPanel:
    key: str
    name: str
    spend: SafeString
    tokens: SafeString
    totals: list[Total]


def dimension_panels(
    *, rows: Sequence[DailyRow], days: Sequence[date], dimensions: Sequence[str] = tuple(DIMENSIONS)
) -> list[DimensionPanel]:
    """Per dimension (user, key, model, provider): spend per day and tokens per day as stacked bars, and totals."""
    labels = [day.isoformat() for day in days]
    panels = []
    for key in dimensions:
        name = DIMENSIONS[key]
        spend = [Series(n, v) for n, v in breakdown_by(rows=rows, days=days, dimension=key, metric="cost")]
        tokens = [Series(n, v) for n, v in breakdown_by(rows=rows, days=days, dimension=key, metric="tokens")]
        panels.append(
            DimensionPanel(
                key=key,
                name=name,
                spend=_safe(
                    charts.stacked_bar_chart(
                        chart_id=f"spend-{key}",
                        title=f"Spend per day by {name}",
                        labels=labels,
                        series=spend,
                        x_label="day (UTC)",
                        y_label="USD",
                        fmt=charts.fmt_usd,
                    )
                ),
                tokens=_safe(
                    charts.stacked_bar_chart(
                        chart_id=f"tokens-{key}",
                        title=f"Tokens per day by {name}",
                        labels=labels,
                        series=tokens,
                        x_label="day (UTC)",
                        y_label="tokens (in + out)",
                    )
                ),
                totals=totals_by(rows=rows, dimension=key),
            )
        )
    return panels


def chart_rules(rules: Sequence[RuleCount]) -> SafeString:
    by_rule: Counter[str] = Counter()
    for rule in rules:
        by_rule[rule.rule] += rule.requests
    ranked = by_rule.most_common(12)
    return _safe(
        charts.bar_chart(
            chart_id="routing-rules",
            title="Routing decisions by rule",
            labels=[r for r, _ in ranked],
            values=[float(n) for _, n in ranked],
            x_label="requests",
            y_label="rule",
        )
    )


def chart_burndown(burndown: Burndown) -> SafeString:
    status = burndown.budget
    usd = status.unit == "usd"
    fmt = charts.fmt_usd if usd else charts.fmt_number
    series = [Series("spent", burndown.spent, color="#4e79a7")]
    if any(v is not None for v in burndown.pace):
        series.append(Series("even pace", burndown.pace, color=GREY, dashed=True))
    return _safe(
        charts.line_chart(
            chart_id=f"budget-{status.id}",
            title=f"Budget {status.name}: spend against the limit",
            labels=burndown.labels,
            series=series,
            x_label="hour (UTC)" if status.period == "day" else "day (UTC)",
            y_label="USD" if usd else "tokens",
            fmt=fmt,
            area=True,
            reference=Reference(burndown.limit, f"limit {fmt(burndown.limit)}"),
        )
    )
