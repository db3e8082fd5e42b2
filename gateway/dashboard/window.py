"""The time range a page shows, from its GET parameters (pure: no Django).

Everything is in UTC, like budget periods (gateway/budgets.py) and the daily rollup (gateway/usage_services.py),
so a day on the dashboard is the same day a budget resets and a ``UsageDaily`` row covers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

PRESETS = {"24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days"}
DEFAULT = "7d"
# A custom range is bounded so that every query of the page stays bounded (and the charts readable).
MAX_DAYS = 92
# Up to this many days the "over time" charts have one point per hour, beyond it one per day.
HOURLY_UP_TO_DAYS = 7

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class TimeWindow:
    start: datetime  # inclusive, UTC
    end: datetime  # exclusive, UTC
    bucket: str  # "hour" | "day": the step of the charts over time
    key: str  # "24h" | "7d" | "30d" | "custom"
    label: str
    first_day: date  # the custom form's values (inclusive)
    last_day: date

    @property
    def step(self) -> timedelta:
        return HOUR if self.bucket == "hour" else DAY

    def buckets(self) -> list[datetime]:
        """The start of every bucket of the window, oldest first."""
        out = []
        at = bucket_floor(self.start, self.bucket)
        while at < self.end:
            out.append(at)
            at += self.step
        return out

    def days(self) -> list[date]:
        """Every UTC day the window touches, oldest first."""
        out = []
        day = self.start.astimezone(UTC).date()
        while datetime(day.year, day.month, day.day, tzinfo=UTC) < self.end:
            out.append(day)
            day += DAY
        return out


def bucket_floor(moment: datetime, bucket: str) -> datetime:
    moment = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return moment if bucket == "hour" else moment.replace(hour=0)


def bucket_label(moment: datetime, bucket: str) -> str:
    return moment.strftime("%m-%d %H:00") if bucket == "hour" else moment.strftime("%Y-%m-%d")


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _parse_day(value: str | None) -> date | None:
    try:
        return date.fromisoformat((value or "").strip())
    except ValueError:
        return None


def window_parse(*, params: Mapping[str, str], now: datetime) -> tuple[TimeWindow, str]:
    """The window ``?range=24h|7d|30d`` or ``?range=custom&from=YYYY-MM-DD&to=YYYY-MM-DD`` (both days included)
    names, and an explanation when the parameters were unusable (then the default window is used)."""
    key = params.get("range") or DEFAULT
    if key == "custom":
        first, last = _parse_day(params.get("from")), _parse_day(params.get("to"))
        if first is None or last is None:
            return window_preset(DEFAULT, now), "Give both dates of a custom range as YYYY-MM-DD."
        if last < first:
            return window_preset(DEFAULT, now), "The end of the range is before its start."
        if (last - first).days + 1 > MAX_DAYS:
            return window_preset(DEFAULT, now), f"A custom range spans at most {MAX_DAYS} days."
        days = (last - first).days + 1
        label = f"{first.isoformat()} to {last.isoformat()}"
        bucket = "hour" if days <= HOURLY_UP_TO_DAYS else "day"
        return TimeWindow(_midnight(first), _midnight(last) + DAY, bucket, "custom", label, first, last), ""
    if key not in PRESETS:
        return window_preset(DEFAULT, now), f"Unknown range {key[:20]!r}: showing {PRESETS[DEFAULT].lower()}."
    return window_preset(key, now), ""


def window_preset(key: str, now: datetime) -> TimeWindow:
    now = now.astimezone(UTC)
    if key == "24h":
        end = bucket_floor(now, "hour") + HOUR
        start = end - timedelta(hours=24)
        bucket = "hour"
    elif key == "7d":  # today so far and the six whole days before it, hour by hour
        end = bucket_floor(now, "hour") + HOUR
        start = bucket_floor(now, "day") - timedelta(days=6)
        bucket = "hour"
    else:
        end = bucket_floor(now, "day") + DAY
        start = end - timedelta(days=30)
        bucket = "day"
    return TimeWindow(start, end, bucket, key, PRESETS[key], start.date(), (end - timedelta(seconds=1)).date())
