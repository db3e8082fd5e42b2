"""Lynkr's settings with the benchmark's FLOOR endpoint mounted, for a tree whose lynkr_site/urls.py does not
mount gateway/bench_floor.py itself (bench/run.py picks this only then; the process is otherwise identical)."""

from lynkr_site.settings.base import *  # noqa: F403

ROOT_URLCONF = "bench.floor_urls"
