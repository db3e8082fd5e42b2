"""Server-side SVG charts: valid XML, escaped labels, placeholders, deterministic output."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from gateway.dashboard import charts
from gateway.dashboard.charts import Reference, Series

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<script>alert(\"x\")</script> & 'quotes'"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def texts(root: ET.Element) -> str:
    return " ".join("".join(el.itertext()) for el in root.iter(f"{SVG}text"))


def tooltips(root: ET.Element) -> list[str]:
    return [el.text or "" for el in root.iter(f"{SVG}title")]


def line(**kwargs: object) -> str:
    base: dict[str, object] = {
        "chart_id": "c", "title": "Requests", "labels": ["a", "b", "c"], "x_label": "hour", "y_label": "requests",
        "series": [Series("requests", (1.0, 5.0, 3.0))],
    }  # fmt: skip
    base.update(kwargs)
    return charts.line_chart(**base)  # type: ignore[arg-type]


def test_line_chart_is_accessible_svg_with_axis_labels() -> None:
    root = parse(line())
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "c-title c-desc"
    assert root.find(f"{SVG}title").text == "Requests"  # type: ignore[union-attr]
    assert "3 points from a to c" in (root.find(f"{SVG}desc").text or "")  # type: ignore[union-attr]
    axis = [el.text for el in root.iter(f"{SVG}text") if el.get("class") == "axis-label"]
    assert axis == ["requests", "hour"]
    # y ticks: four round steps from 0 to at least the peak (5)
    assert [el.text for el in root.iter(f"{SVG}text") if el.get("text-anchor") == "end"][:5] == [
        "0",
        "2",
        "4",
        "6",
        "8",
    ]
    assert tooltips(root)[1:] == ["a · requests: 1", "b · requests: 5", "c · requests: 3"]


def test_hostile_labels_are_escaped_everywhere() -> None:
    svgs = [
        line(title=HOSTILE, labels=[HOSTILE, "b"], series=[Series(HOSTILE, (1.0, 2.0)), Series("two", (2.0, 1.0))],
             x_label=HOSTILE, y_label=HOSTILE),
        charts.stacked_bar_chart(chart_id=HOSTILE, title=HOSTILE, labels=[HOSTILE], series=[Series(HOSTILE, (1.0,)),
                                 Series("b", (2.0,))], x_label=HOSTILE, y_label=HOSTILE),
        charts.bar_chart(chart_id="b", title=HOSTILE, labels=[HOSTILE], values=[3.0], x_label=HOSTILE, y_label=HOSTILE),
        charts.no_data(chart_id="n", title=HOSTILE, message=HOSTILE),
    ]  # fmt: skip
    for svg in svgs:
        assert "<script" not in svg
        root = parse(svg)  # still well-formed XML
        assert root.find(f"{SVG}script") is None
        assert any(HOSTILE in t for t in tooltips(root))  # the text survives, as text
        assert "&lt;script&gt;" in svg


def test_chart_ids_are_sanitised() -> None:
    root = parse(charts.no_data(chart_id='x" onload="alert(1)', title="t"))
    assert root.get("id") == "x-onload-alert-1"
    assert root.get("onload") is None


def test_xml_invalid_characters_are_dropped() -> None:
    root = parse(line(labels=["a\x00b", "c\x1bd", "e"]))
    assert "ab · requests: 1" in tooltips(root)


@pytest.mark.parametrize(
    "svg",
    [
        line(labels=[], series=[]),
        line(series=[Series("requests", (0.0, 0.0, None))]),
        charts.stacked_bar_chart(chart_id="s", title="t", labels=["d1"], series=[], x_label="x", y_label="y"),
        charts.bar_chart(chart_id="b", title="t", labels=[], values=[], x_label="x", y_label="y"),
    ],
)
def test_empty_data_renders_a_placeholder(svg: str) -> None:
    root = parse(svg)
    assert "No data in this range" in texts(root)
    assert root.find(f"{SVG}path") is None and root.find(f"{SVG}circle") is None


def test_a_reference_line_alone_is_not_empty() -> None:
    root = parse(line(series=[Series("spent", (0.0, 0.0, None))], reference=Reference(10.0, "limit $10")))
    assert "No data" not in texts(root)
    assert "limit $10" in texts(root)
    ticks = [el.text for el in root.iter(f"{SVG}text") if el.get("text-anchor") == "end" and el.get("x") == "66"]
    assert ticks == ["0", "2.5", "5", "7.5", "10"]  # the scale reaches the limit


def test_one_point_draws_a_marker() -> None:
    root = parse(line(labels=["only"], series=[Series("requests", (4.0,))]))
    circles = list(root.iter(f"{SVG}circle"))
    assert len(circles) == 1
    assert circles[0].get("cx") == "342.0"  # the middle of the plot (72 .. 612)


def test_gaps_split_a_line_and_many_points_drop_markers() -> None:
    root = parse(line(labels=["a", "b", "c", "d"], series=[Series("s", (1.0, 2.0, None, 3.0))]))
    paths = [p.get("d") for p in root.iter(f"{SVG}path")]
    assert len(paths) == 2 and paths[0].count("L") == 1 and "L" not in paths[1]
    many = [str(i) for i in range(500)]
    root = parse(line(labels=many, series=[Series("s", tuple(float(i % 7) for i in range(500)))]))
    assert not list(root.iter(f"{SVG}circle"))
    ticks = [el.text for el in root.iter(f"{SVG}text") if el.get("text-anchor") == "middle" and el.get("class") is None]
    assert 2 <= len(ticks) <= 6


def test_stacked_bars_stack_and_legend() -> None:
    svg = charts.stacked_bar_chart(
        chart_id="s", title="Spend", labels=["d1", "d2"], x_label="day", y_label="USD", fmt=charts.fmt_usd,
        series=[Series("alice", (1.0, 0.0)), Series("bob", (2.0, None))],
    )  # fmt: skip
    root = parse(svg)
    rects = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert [r.find(f"{SVG}title").text for r in rects] == ["d1 · alice: $1", "d1 · bob: $2"]  # type: ignore[union-attr]
    alice, bob = rects
    assert float(bob.get("y")) + float(bob.get("height")) == pytest.approx(float(alice.get("y")), abs=0.11)  # type: ignore[arg-type]
    assert [el.text for el in root.iter(f"{SVG}title")][-2:] == ["alice", "bob"]  # the legend


def test_bar_chart_lengths_are_proportional() -> None:
    root = parse(charts.bar_chart(chart_id="b", title="Rules", labels=["big", "small"], values=[10.0, 5.0],
                                  x_label="requests", y_label="rule"))  # fmt: skip
    widths = [float(r.get("width") or 0) for r in root.iter(f"{SVG}rect")]
    assert widths[0] == pytest.approx(2 * widths[1])
    assert "rule" in texts(root) and "requests" in texts(root)


def test_output_is_deterministic() -> None:
    assert line() == line()
    series = [Series("a", (1.5, 2.25)), Series("b", (0.1, None))]
    first = charts.stacked_bar_chart(
        chart_id="s", title="t", labels=["1", "2"], series=series, x_label="x", y_label="y"
    )
    assert first == charts.stacked_bar_chart(chart_id="s", title="t", labels=["1", "2"], series=series, x_label="x",
                                             y_label="y")  # fmt: skip


def test_formatters_and_ticks() -> None:
    assert charts.nice_ticks(5) == [0, 2, 4, 6, 8]
    assert charts.nice_ticks(0) == [0, 0.25, 0.5, 0.75, 1.0]
    assert charts.nice_ticks(0.003) == [0, 0.001, 0.002, 0.003, 0.004]
    assert [charts.fmt_number(v) for v in (0, 950, 1200, 3_400_000, 2.5)] == ["0", "950", "1.2k", "3.4M", "2.5"]
    assert [charts.fmt_usd(v) for v in (0, 0.00012, 0.5, 1.5, 40, 2500)] == [
        "$0",
        "$0.00012",
        "$0.50",
        "$1.50",
        "$40",
        "$2.5k",
    ]
    assert [charts.fmt_ms(v) for v in (850, 1500)] == ["850 ms", "1.5 s"]
