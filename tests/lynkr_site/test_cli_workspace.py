"""`lynkr index` (progress bar, queue, follow, cancel) and the WORKSPACE_ROOT bootstrap of `lynkr serve`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import httpx
import pytest

from lynkr_site.cli import build_parser
from lynkr_site.cli_workspace import cmd_index
from tests.e2e.server import LynkrServer
from workspace import tasks
from workspace.models import JobRun, JobStatus, Symbol, Workspace


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["index", *argv])


@pytest.fixture
def workspace(db: Any, tmp_path: Path) -> Workspace:
    (tmp_path / "app.py").write_text("def main():\n    return helper()\n\n\ndef helper():\n    return 1\n")
    (tmp_path / "lib.rb").write_text("class Greeter\n  def hello\n  end\nend\n")
    return Workspace.objects.create(name="proj", root_path=str(tmp_path))


def test_index_inline_prints_a_summary_and_a_progress_bar(workspace: Workspace, capsys: Any) -> None:
    assert cmd_index(_args("proj")) == 0
    out, err = capsys.readouterr()
    assert "proj: 2 files (2 parsed, 0 unchanged, 0 removed)" in out
    assert "indexing proj" in err and "2/2" in err  # tqdm's bar on stderr
    assert set(Symbol.objects.values_list("name", flat=True)) >= {"main", "helper", "Greeter", "hello"}
    assert cmd_index(_args("proj")) == 0
    assert "(0 parsed, 2 unchanged, 0 removed)" in capsys.readouterr().out


def test_unknown_workspace_names_the_known_ones(workspace: Workspace) -> None:
    with pytest.raises(SystemExit, match=r"no workspace named 'nope' \(known: proj\)"):
        cmd_index(_args("nope"))


@pytest.mark.django_db(transaction=True)
def test_queue_follow_and_cancel(tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    Workspace.objects.create(name="proj", root_path=str(tmp_path))

    # The worker, in-process: the queued task runs when the row is committed.
    class Sent:
        id = "celery-task-id"

    def run_now(job_id: int) -> Sent:
        tasks.index_rebuild(job_id)
        return Sent()

    monkeypatch.setattr(tasks.index_rebuild, "delay", run_now)
    assert cmd_index(_args("proj", "--queue", "--follow")) == 0
    job = JobRun.objects.get()
    assert job.status == JobStatus.SUCCEEDED and f"job {job.pk}: succeeded" in capsys.readouterr().out

    monkeypatch.setattr(tasks.index_rebuild, "delay", lambda job_id: Sent())  # no worker: stays queued
    assert cmd_index(_args("proj", "--queue")) == 0
    queued = JobRun.objects.filter(status=JobStatus.QUEUED).get()
    assert cmd_index(_args("--cancel", str(queued.pk))) == 0
    assert JobRun.objects.get(pk=queued.pk).cancel_requested
    assert cmd_index(_args("--cancel", str(job.pk))) == 1  # already over


def test_serve_bootstraps_workspace_root(tmp_path: Path) -> None:
    root = tmp_path / "checkout"
    root.mkdir()
    (root / "README.md").write_text("hello\n")
    server = LynkrServer(data_dir=tmp_path / "data", env_extra={"WORKSPACE_ROOT": str(root)}).start()
    try:
        assert "workspace 'default' from WORKSPACE_ROOT" in server.log()
        headers = {"x-api-key": server.api_key}
        listed = httpx.get(f"{server.url}/v1/workspaces", headers=headers, timeout=10).json()
        assert listed["data"] == [{"name": "default", "policy": "default"}]
        read = httpx.post(
            f"{server.url}/v1/tools/fs_read", json={"arguments": {"path": "README.md"}}, headers=headers, timeout=10
        ).json()
        assert read["content"]["content"] == "hello\n"
    finally:
        server.stop()
