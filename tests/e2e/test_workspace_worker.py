"""A real Celery worker on Redis runs an index rebuild and a test run; a real beat schedules a reindex.

Everything is separate processes sharing one SQLite file and Redis, as in a deployment: `lynkr migrate`,
`lynkr worker`, `lynkr beat`, and small Django scripts that queue jobs the way the admin and the tools do.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server import LYNKR, ROOT
from tests.services import require_redis
from tests.workspace.repos import make_repo

pytestmark = [pytest.mark.e2e, pytest.mark.services]

REDIS_DB = 13

CHECK = """\
import sys
from pkg.mod import helper
assert helper() == 1
open("coverage.xml", "w").write('<coverage line-rate="0.75" branch-rate="0.5"></coverage>')
print("3 passed in 0.01s")
"""

SETUP = """\
import json, django
django.setup()
from django.db import transaction
from workspace.models import Workspace, JobKind
from workspace.jobs import job_enqueue
ws = Workspace.objects.create(name="w", root_path={root!r}, test_command={command!r}, coverage_files=["coverage.xml"])
with transaction.atomic():
    index_job = job_enqueue(workspace_id=ws.pk, kind=JobKind.INDEX_REBUILD)
    test_job = job_enqueue(workspace_id=ws.pk, kind=JobKind.TEST_RUN)
print(json.dumps({{"workspace": ws.pk, "index": index_job, "test": test_job}}))
"""

SCHEDULE = """\
import django
django.setup()
from django_celery_beat.models import IntervalSchedule
from workspace.models import Workspace
from workspace.services import workspace_schedule_sync
ws = Workspace.objects.get(name="w")
ws.reindex_interval_minutes = 60
ws.save()
task = workspace_schedule_sync(workspace_id=ws.pk)
# What an admin does in django-celery-beat's page: a tighter schedule than the workspace form offers.
task.interval, _ = IntervalSchedule.objects.get_or_create(every=2, period=IntervalSchedule.SECONDS)
task.save()
"""


def _flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[dict[str, object]]:
    url = f"{require_redis()}/{REDIS_DB}"
    _flush(url)
    db = tmp_path / "lynkr.sqlite3"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LYNKR_", "DATABASE_URL", "REDIS_URL", "DJANGO_"))}
    env.update(
        {
            "LYNKR_DATA_DIR": str(tmp_path / "data"),
            "LYNKR_ENV_FILE": "/nonexistent",
            "DJANGO_SETTINGS_MODULE": "lynkr_site.settings.base",
            "DATABASE_URL": f"sqlite:///{db}",
            "REDIS_URL": url,
        }
    )
    subprocess.run([str(LYNKR), "migrate"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    processes: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []

    def start(*argv: str) -> None:
        log = tmp_path / f"{argv[0]}.log"
        logs.append(log)
        processes.append(
            subprocess.Popen(
                [str(LYNKR), *argv, "--loglevel", "info"],
                cwd=ROOT,
                env=env,
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    try:
        yield {"env": env, "db": db, "start": start, "logs": logs}
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        _flush(url)


def _script(env: dict[str, str], source: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", source], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _rows(db: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(db, timeout=10) as conn:
        return conn.execute(sql, args).fetchall()


def _wait(predicate, timeout: float, logs: list[Path]):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    pytest.fail("timed out; logs:\n" + "\n".join(p.read_text(errors="replace")[-3000:] for p in logs if p.exists()))


def test_worker_indexes_and_runs_tests_and_beat_reindexes(deployment: dict[str, object], tmp_path: Path) -> None:
    env, db, logs = deployment["env"], deployment["db"], deployment["logs"]
    assert isinstance(env, dict) and isinstance(db, Path) and isinstance(logs, list)
    repo = make_repo(
        tmp_path / "repo",
        {
            "pkg/__init__.py": "",
            "pkg/mod.py": "def helper():\n    return 1\n",
            "main.py": "from pkg.mod import helper\n\nprint(helper())\n",
            "check.py": CHECK,
        },
    )
    ids = json.loads(_script(env, SETUP.format(root=str(repo), command=f"{sys.executable} check.py")))
    deployment["start"]("worker")  # type: ignore[operator]

    def finished(job_id: int) -> tuple[object, ...] | None:
        rows = _rows(db, "select status, message, result from workspace_jobrun where id = ?", job_id)
        return rows[0] if rows and rows[0][0] in ("succeeded", "failed", "cancelled") else None

    index = _wait(lambda: finished(ids["index"]), 90, logs)
    assert index[0] == "succeeded", index
    assert json.loads(str(index[2]))["files"] == 4
    definitions = _rows(
        db,
        "select f.path from workspace_symbol s join workspace_indexedfile f on f.id = s.file_id"
        " where s.name = 'helper'",
    )
    assert definitions == [("pkg/mod.py",)]
    test = _wait(lambda: finished(ids["test"]), 90, logs)
    assert test[0] == "succeeded", test
    run = _rows(db, "select outcome, passed, coverage_percent from workspace_testrun where job_id = ?", ids["test"])
    assert run == [("passed", 3, 75.0)]

    _script(env, SCHEDULE)
    deployment["start"]("beat")  # type: ignore[operator]

    def scheduled() -> list[tuple[object, ...]]:
        return _rows(
            db,
            "select id from workspace_jobrun where kind = 'index_rebuild' and status = 'succeeded' and id != ?",
            ids["index"],
        )

    assert _wait(scheduled, 90, logs)
