"""Charts as SVG strings, rendered on the server (pure: no Django, no I/O).

Three shapes cover the dashboard: a line (or area) chart over time, a horizontal bar chart of categories, and
stacked bars over time. Every function is deterministic (same data, same bytes: coordinates are rounded to one
decimal, nothing random), returns a standalone ``<svg>`` element, and escapes every piece of text it is given:
labels such as usernames, key labels and client model names come from users and clients. Accessibility follows
the W3C "SVG accessibility" pattern: ``role="img"`` labelled by the chart's ``<title>`` and ``<desc>``; each bar
and point carries a ``<title>`` with its exact value (a native tooltip, also read by screen readers). Text and
axes use ``currentColor`` so the admin's light and dark themes both read well.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape as _html_escape

# Tableau 10: distinguishable, and readable on light and dark backgrounds.
PALETTE = (
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
)  # fmt: skip
WIDTH = 640
HEIGHT = 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 72, 28, 14, 40  # plot margins: y tick labels left, x ticks and axis label below
_LEGEND_ROW = 18
_CHAR = 6.4  # approximate width of one character at font-size 11, to wrap the legend
_MAX_LABEL = 32
_MAX_X_TICKS = 6
_MARKERS_UP_TO = 60  # beyond this many points a line has no per-point markers (keeps the SVG small)
# Characters XML 1.0 forbids even escaped: a client model name could carry them.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ID_UNSAFE = re.compile(r"[^a-z0-9-]+")

Formatter = Callable[[float], str]


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: tuple[float | None, ...]  # one per label; None = no value (a gap in a line, nothing in a stack)
    color: str = ""  # empty: the palette colour of its position
    dashed: bool = False


@dataclass(frozen=True, slots=True)
class Reference:
    """A horizontal line across the plot (a budget's limit)."""

    value: float
    label: str


def escape(text: object) -> str:
    return _html_escape(_XML_INVALID.sub("", str(text)), quote=True)


def shorten(text: str, limit: int = _MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fmt_number(value: float) -> str:
    """Compact: 950, 1.2k, 3.4M."""
    magnitude = abs(value)
    for threshold, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if magnitude >= threshold:
            return f"{value / threshold:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{value:.0f}" if value == int(value) else f"{value:.2f}".rstrip("0").rstrip(".")


def fmt_usd(value: float) -> str:
    if value == 0:
        return "$0"
    if abs(value) >= 1000:
        return "$" + fmt_number(value)
    if abs(value) >= 1:
        return f"${value:,.0f}" if value == int(value) else f"${value:,.2f}"
    text = f"{value:.6f}".rstrip("0")
    return "$" + (text if len(text.split(".")[1]) >= 2 else f"{value:.2f}")


def fmt_ms(value: float) -> str:
    return f"{value / 1000:.1f} s" if value >= 1000 else f"{value:.0f} ms"


def fmt_percent(value: float) -> str:
    return f"{value:.0f}%" if value == int(value) else f"{value:.1f}%"


def nice_ticks(maximum: float, count: int = 4) -> list[float]:
    """0 and ``count`` evenly spaced round values whose top is at least ``maximum``."""
    if maximum <= 0 or not math.isfinite(maximum):
        maximum = 1.0
    raw = maximum / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    return [round(step * i, 10) for i in range(count + 1)]


def _n(value: float) -> str:
    return f"{value:.1f}"


def _color(series: Series, index: int) -> str:
    return series.color or PALETTE[index % len(PALETTE)]


def _chart_id(chart_id: str) -> str:
    return _ID_UNSAFE.sub("-", chart_id.lower()).strip("-") or "chart"


def _open(chart_id: str, title: str, desc: str, height: float) -> list[str]:
    cid = _chart_id(chart_id)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{cid}" viewBox="0 0 {WIDTH} {_n(height)}" '
        f'width="100%" role="img" aria-labelledby="{cid}-title {cid}-desc" font-size="11" font-family="inherit">',
        f'<title id="{cid}-title">{escape(title)}</title>',
        f'<desc id="{cid}-desc">{escape(desc)}</desc>',
    ]


def no_data(*, chart_id: str, title: str, message: str = "No data in this range") -> str:
    parts = _open(chart_id, title, message, HEIGHT)
    parts.append(
        f'<rect x="1" y="1" width="{WIDTH - 2}" height="{HEIGHT - 2}" rx="6" fill="none" stroke="currentColor" '
        'stroke-opacity=".2" stroke-dasharray="4 4"/>'
    )
    parts.append(
        f'<text x="{WIDTH / 2:.1f}" y="{HEIGHT / 2:.1f}" text-anchor="middle" dominant-baseline="middle" '
        f'fill="currentColor" fill-opacity=".6" font-size="14" class="no-data">{escape(message)}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _legend(series: Sequence[Series], top: float) -> tuple[list[str], float]:
    """Swatches and names below the plot, wrapped into rows; returns the parts and the height used."""
    if len(series) < 2:
        return [], 0.0
    parts: list[str] = []
    x, y = float(_LEFT), top
    for index, one in enumerate(series):
        name = shorten(one.name, 24)
        item_width = 18 + len(name) * _CHAR + 14
        if x + item_width > WIDTH - _RIGHT and x > _LEFT:
            x, y = float(_LEFT), y + _LEGEND_ROW
        parts.append(
            f'<g class="legend-item"><rect x="{_n(x)}" y="{_n(y - 9)}" width="12" height="10" rx="2" '
            f'fill="{_color(one, index)}"/><text x="{_n(x + 17)}" y="{_n(y)}" fill="currentColor">'
            f"<title>{escape(one.name)}</title>{escape(name)}</text></g>"
        )
        x += item_width
    return parts, y - top + _LEGEND_ROW + 8


def _frame(ticks: list[float], fmt: Formatter, x_label: str, y_label: str, plot_bottom: float) -> list[str]:
    """Horizontal grid lines with the y tick values, and both axis labels."""
    top, plot_height = ticks[-1], plot_bottom - _TOP
    parts = []
    for tick in ticks:
        y = plot_bottom - tick / top * plot_height
        parts.append(
            f'<line x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{_n(y)}" y2="{_n(y)}" stroke="currentColor" '
            f'stroke-opacity="{".35" if tick == 0 else ".12"}"/>'
            f'<text x="{_LEFT - 6}" y="{_n(y + 4)}" text-anchor="end" fill="currentColor" fill-opacity=".75">'
            f"{escape(fmt(tick))}</text>"
        )
    middle = _TOP + plot_height / 2
    parts.append(
        f'<text class="axis-label" x="14" y="{_n(middle)}" text-anchor="middle" fill="currentColor" '
        f'transform="rotate(-90 14 {_n(middle)})">{escape(y_label)}</text>'
    )
    parts.append(
        f'<text class="axis-label" x="{_n(_LEFT + (WIDTH - _RIGHT - _LEFT) / 2)}" y="{_n(plot_bottom + 34)}" '
        f'text-anchor="middle" fill="currentColor">{escape(x_label)}</text>'
    )
    return parts


def _x_ticks(labels: Sequence[str], xs: Sequence[float], plot_bottom: float, every: int = 0) -> list[str]:
    """At most ``_MAX_X_TICKS`` labels, every ``every``-th one (a multiple of it when that gives too many)."""
    step = max(1, math.ceil(len(labels) / _MAX_X_TICKS))
    if every > 0:
        step = every * max(1, math.ceil(step / every))
    parts = []
    for index in range(0, len(labels), step):
        text = shorten(labels[index], 16)
        x = min(xs[index], WIDTH - 2 - len(text) * _CHAR / 2)  # the last label stays inside the picture
        parts.append(
            f'<text x="{_n(x)}" y="{_n(plot_bottom + 16)}" text-anchor="middle" fill="currentColor" '
            f'fill-opacity=".75">{escape(text)}</text>'
        )
    return parts


def _numbers(series: Sequence[Series]) -> list[float]:
    return [v for one in series for v in one.values if v is not None and math.isfinite(v)]


def _describe(kind: str, labels: Sequence[str], series: Sequence[Series], x_label: str, y_label: str) -> str:
    names = ", ".join(one.name for one in series[:12]) + (", …" if len(series) > 12 else "")
    span = f"from {labels[0]} to {labels[-1]}" if len(labels) > 1 else f"at {labels[0]}"
    return f"{kind} of {y_label} by {x_label}, {len(labels)} points {span}; series: {names}."


def line_chart(
    *,
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    x_label: str,
    y_label: str,
    fmt: Formatter = fmt_number,
    area: bool = False,
    reference: Reference | None = None,
    tick_every: int = 0,
) -> str:
    """One line per series over ``labels`` (a gap where a value is None); ``area`` fills under each solid line;
    ``tick_every`` aligns the x labels (24 on hourly data: one per day)."""
    values = _numbers(series)
    if not labels or (not any(values) and reference is None):
        return no_data(chart_id=chart_id, title=title)
    peak = max([*values, reference.value if reference else 0.0, 0.0])
    ticks = nice_ticks(peak)
    plot_bottom = HEIGHT - _BOTTOM
    legend, legend_height = _legend(series, HEIGHT + 12)
    parts = _open(chart_id, title, _describe("Line chart", labels, series, x_label, y_label), HEIGHT + legend_height)
    parts += _frame(ticks, fmt, x_label, y_label, plot_bottom)
    width = WIDTH - _LEFT - _RIGHT
    last = max(1, len(labels) - 1)
    xs = [_LEFT + width / 2] if len(labels) == 1 else [_LEFT + width * i / last for i in range(len(labels))]

    def y_of(value: float) -> float:
        return plot_bottom - value / ticks[-1] * (plot_bottom - _TOP)

    parts += _x_ticks(labels, xs, plot_bottom, tick_every)
    for index, one in enumerate(series):
        color = _color(one, index)
        segments: list[list[tuple[float, float]]] = [[]]
        for x, value in zip(xs, one.values, strict=False):
            if value is None or not math.isfinite(value):
                segments.append([])
            else:
                segments[-1].append((x, y_of(value)))
        dash = ' stroke-dasharray="6 4"' if one.dashed else ""
        parts.append(f'<g class="series" data-series="{escape(one.name)}">')
        for points in (s for s in segments if s):
            path = " ".join(f"{'M' if i == 0 else 'L'}{_n(x)} {_n(y)}" for i, (x, y) in enumerate(points))
            if area and not one.dashed and len(points) > 1:
                parts.append(
                    f'<path d="{path} L{_n(points[-1][0])} {_n(plot_bottom)} L{_n(points[0][0])} {_n(plot_bottom)} Z" '
                    f'fill="{color}" fill-opacity=".18" stroke="none"/>'
                )
            parts.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
        if not one.dashed and (len(labels) <= _MARKERS_UP_TO or len(_numbers([one])) == 1):
            for x, label, value in zip(xs, labels, one.values, strict=False):
                if value is not None and math.isfinite(value):
                    parts.append(
                        f'<circle cx="{_n(x)}" cy="{_n(y_of(value))}" r="3" fill="{color}">'
                        f"<title>{escape(label)} · {escape(one.name)}: {escape(fmt(value))}</title></circle>"
                    )
        parts.append("</g>")
    if reference is not None:
        y = y_of(reference.value)
        parts.append(
            f'<g class="reference"><line x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{_n(y)}" y2="{_n(y)}" '
            f'stroke="#e15759" stroke-width="1.5" stroke-dasharray="5 3"/>'
            f'<text x="{WIDTH - _RIGHT}" y="{_n(y - 4)}" text-anchor="end" fill="#e15759">'
            f"{escape(reference.label)}</text></g>"
        )
    parts += legend
    parts.append("</svg>")
    return "".join(parts)


def stacked_bar_chart(
    *,
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    x_label: str,
    y_label: str,
    fmt: Formatter = fmt_number,
) -> str:
    """One bar per label, made of one segment per series (None counts as nothing)."""
    totals = [sum(v or 0.0 for v in column) for column in zip(*(s.values for s in series), strict=False)]
    if not labels or not any(totals):
        return no_data(chart_id=chart_id, title=title)
    ticks = nice_ticks(max(totals))
    plot_bottom = HEIGHT - _BOTTOM
    legend, legend_height = _legend(series, HEIGHT + 12)
    parts = _open(chart_id, title, _describe("Stacked bar chart", labels, series, x_label, y_label),
                  HEIGHT + legend_height)  # fmt: skip
    parts += _frame(ticks, fmt, x_label, y_label, plot_bottom)
    slot = (WIDTH - _LEFT - _RIGHT) / len(labels)
    bar = max(1.0, slot * 0.75)
    xs = [_LEFT + slot * (i + 0.5) for i in range(len(labels))]
    parts += _x_ticks(labels, xs, plot_bottom)
    scale = (plot_bottom - _TOP) / ticks[-1]
    base: list[float] = [float(plot_bottom)] * len(labels)
    for index, one in enumerate(series):
        color = _color(one, index)
        parts.append(f'<g class="series" data-series="{escape(one.name)}" fill="{color}">')
        for i, value in enumerate(one.values[: len(labels)]):
            if not value or not math.isfinite(value) or value < 0:
                continue
            height = value * scale
            base[i] -= height
            parts.append(
                f'<rect x="{_n(xs[i] - bar / 2)}" y="{_n(base[i])}" width="{_n(bar)}" height="{_n(height)}">'
                f"<title>{escape(labels[i])} · {escape(one.name)}: {escape(fmt(value))}</title></rect>"
            )
        parts.append("</g>")
    parts += legend
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(
    *,
    chart_id: str,
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    x_label: str,
    y_label: str,
    fmt: Formatter = fmt_number,
) -> str:
    """Horizontal bars, one per category (``labels`` on the left, which suits long names like routing rules)."""
    if not labels or not any(values):
        return no_data(chart_id=chart_id, title=title)
    row = 24
    top, left, right = 24, 170, 70
    height = top + row * len(labels) + 30
    desc = f"Bar chart of {x_label} by {y_label}: " + "; ".join(
        f"{label}: {fmt(value)}" for label, value in zip(labels[:20], values[:20], strict=False)
    )
    parts = _open(chart_id, title, desc, height)
    parts.append(
        f'<text class="axis-label" x="{left - 8}" y="14" text-anchor="end" fill="currentColor">{escape(y_label)}</text>'
    )
    peak = max(values)
    usable = WIDTH - left - right
    for i, (label, value) in enumerate(zip(labels, values, strict=False)):
        y = top + row * i
        length = max(0.0, value) / peak * usable if peak > 0 else 0.0
        parts.append(
            f'<g class="bar"><text x="{left - 8}" y="{_n(y + 15)}" text-anchor="end" fill="currentColor">'
            f"{escape(shorten(label, 26))}</text>"
            f'<rect x="{left}" y="{_n(y + 4)}" width="{_n(length)}" height="{row - 8}" rx="2" '
            f'fill="{PALETTE[i % len(PALETTE)]}"><title>{escape(label)}: {escape(fmt(value))}</title></rect>'
            f'<text x="{_n(left + length + 6)}" y="{_n(y + 15)}" fill="currentColor" fill-opacity=".8">'
            f"{escape(fmt(value))}</text></g>"
        )
    parts.append(
        f'<text class="axis-label" x="{_n(left + usable / 2)}" y="{_n(height - 8)}" text-anchor="middle" '
        f'fill="currentColor">{escape(x_label)}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)
