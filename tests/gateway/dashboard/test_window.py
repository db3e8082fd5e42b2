"""Time ranges from GET parameters."""

from __future__ import annotations

from datetime import UTC, date, datetime

from gateway.dashboard.window import MAX_DAYS, window_parse

NOW = datetime(2026, 3, 18, 15, 30, tzinfo=UTC)


def test_presets() -> None:
    day, problem = window_parse(params={"range": "24h"}, now=NOW)
    assert problem == ""
    assert (day.start, day.end, day.bucket) == (
        datetime(2026, 3, 17, 16, tzinfo=UTC),
        datetime(2026, 3, 18, 16, tzinfo=UTC),
        "hour",
    )
    assert len(day.buckets()) == 24 and day.days() == [date(2026, 3, 17), date(2026, 3, 18)]
    week, _ = window_parse(params={}, now=NOW)  # the default
    assert (week.key, week.start, week.end) == (
        "7d",
        datetime(2026, 3, 12, tzinfo=UTC),
        datetime(2026, 3, 18, 16, tzinfo=UTC),
    )
    assert len(week.buckets()) == 6 * 24 + 16 and len(week.days()) == 7
    month, _ = window_parse(params={"range": "30d"}, now=NOW)
    assert (month.bucket, len(month.buckets()), month.days()[0], month.days()[-1]) == (
        "day",
        30,
        date(2026, 2, 17),
        date(2026, 3, 18),
    )


def test_custom_range_includes_both_days() -> None:
    window, problem = window_parse(params={"range": "custom", "from": "2026-01-01", "to": "2026-01-03"}, now=NOW)
    assert problem == ""
    assert (window.start, window.end) == (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 4, tzinfo=UTC))
    assert window.bucket == "hour" and window.label == "2026-01-01 to 2026-01-03"
    long, _ = window_parse(params={"range": "custom", "from": "2026-01-01", "to": "2026-02-15"}, now=NOW)
    assert long.bucket == "day" and len(long.buckets()) == 46


def test_bad_parameters_fall_back_to_the_default_and_say_why() -> None:
    cases = [
        ({"range": "custom", "from": "2026-01-05", "to": "2026-01-01"}, "before its start"),
        ({"range": "custom", "from": "yesterday", "to": "2026-01-01"}, "YYYY-MM-DD"),
        ({"range": "custom", "from": "2025-01-01", "to": "2026-01-01"}, f"at most {MAX_DAYS} days"),
        ({"range": "<b>forever</b>"}, "Unknown range"),
    ]
    for params, expected in cases:
        window, problem = window_parse(params=params, now=NOW)
        assert window.key == "7d" and expected in problem, params
