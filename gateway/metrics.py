"""In-process counters of what the pipeline does (attempts, retries, fallbacks by reason), read by the
observability endpoints. Plain dict counters: cheap on the hot path; exporters read them."""

from __future__ import annotations

from collections import Counter

COUNTERS: Counter[tuple[str, ...]] = Counter()


def count(*key: str) -> None:
    COUNTERS[key] += 1
