"""Index Django's own source (the installed package) into a fresh SQLite database: a full and a no-op run.

    .venv/bin/python bench/index_django.py [--profile]

Prints the numbers and writes them to bench/results/index_django.json. Everything lives in a temporary directory
(LYNKR_DATA_DIR) that is removed at the end.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "index_django.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true", help="print the top of a cProfile of the full run")
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="lynkr-bench-index-")
    os.environ["LYNKR_DATA_DIR"] = data_dir
    os.environ.pop("DATABASE_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "lynkr_site.settings.test"
    sys.path.insert(0, str(ROOT))
    try:
        return _run(Path(data_dir), profile=args.profile)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _run(data_dir: Path, *, profile: bool) -> int:
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from workspace.indexer import index_rebuild
    from workspace.models import Workspace

    call_command("migrate", verbosity=0)
    django_root = Path(django.__path__[0])
    workspace = Workspace.objects.create(name="django-source", root_path=str(django_root))

    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    full = index_rebuild(workspace_id=workspace.pk, full=True)
    if profiler:
        profiler.disable()
    full_seconds = time.perf_counter() - started
    started = time.perf_counter()
    again = index_rebuild(workspace_id=workspace.pk)
    incremental_seconds = time.perf_counter() - started

    database = Path(settings.DATABASES["default"]["NAME"])
    database_bytes = sum(
        path.stat().st_size for path in database.parent.glob(database.name + "*") if path.is_file()
    )  # the WAL and shared-memory files are part of the database until a checkpoint
    python_files = full["languages"].get("python", 0)
    results = {
        "django_version": django.get_version(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "files": full["files"],
        "python_files": python_files,
        "symbols": full["symbols"],
        "references": full["references"],
        "dependencies": full["dependencies"],
        "parsers": full["parsers"],
        "full_seconds": round(full_seconds, 2),
        "incremental_seconds": round(incremental_seconds, 2),
        "incremental_parsed": again["parsed"],
        "database_bytes": database_bytes,
    }
    print(json.dumps(results, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    assert again["parsed"] == 0, "a no-op re-index parsed files"
    assert data_dir.exists()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
