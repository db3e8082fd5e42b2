"""Celery runs tasks in a real worker process, off the request path: on the embedded filesystem queue by
default, and on Redis when REDIS_URL is set."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.server import LYNKR, ROOT
from tests.services import require_redis

SEND = (
    "import django; django.setup();"
    "from lynkr_site.celery import app;"
    "r = app.send_task('gateway.ping', args=['hello-from-test']);"
    "print(r.get(timeout=60))"
)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LYNKR_", "DATABASE_URL", "REDIS_URL", "DJANGO_"))}
    env.update(
        {
            "LYNKR_DATA_DIR": str(tmp_path),
            "LYNKR_ENV_FILE": "/nonexistent",
            "DJANGO_SETTINGS_MODULE": "lynkr_site.settings.base",
            **extra,
        }
    )
    return env


def _round_trip(tmp_path: Path, **extra: str) -> str:
    env = _env(tmp_path, **extra)
    worker = subprocess.Popen(
        [str(LYNKR), "worker", "--embedded", "--loglevel", "warning"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", SEND], cwd=ROOT, env=env, capture_output=True, text=True, timeout=90
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=20)


def test_filesystem_queue_worker_runs_task(tmp_path: Path) -> None:
    assert _round_trip(tmp_path) == "hello-from-test"
    assert (tmp_path / "celery" / "results").is_dir()


@pytest.mark.services
def test_redis_worker_runs_task(tmp_path: Path) -> None:
    url = require_redis()
    assert _round_trip(tmp_path, REDIS_URL=url.rstrip("/") + "/11") == "hello-from-test"
