"""``lynkr index`` and ``lynkr workspace``: index a workspace with a progress bar, queue or cancel jobs."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any


class TqdmProgress:
    """The indexer's Progress as a terminal progress bar; Ctrl-C cancels (the index stays consistent)."""

    def __init__(self, description: str) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=0, desc=description, unit="file", file=sys.stderr, dynamic_ncols=True)

    def update(self, done: int, total: int, message: str = "") -> None:
        if total != self.bar.total:
            self.bar.reset(total=total)
        self.bar.n = done
        if message:
            self.bar.set_postfix_str(message[-40:], refresh=False)
        self.bar.refresh()

    def check_cancelled(self) -> None:
        return None

    def close(self) -> None:
        self.bar.close()


def _workspace_id(name: str) -> int:
    from workspace.models import Workspace

    row = Workspace.objects.filter(name=name).values_list("pk", flat=True).first()
    if row is None:
        known = ", ".join(Workspace.objects.order_by("name").values_list("name", flat=True)) or "none"
        raise SystemExit(f"lynkr: no workspace named {name!r} (known: {known})")
    return int(row)


def _follow(job_id: int) -> int:
    """Show a queued job's progress until it ends; Ctrl-C asks the worker to cancel it."""
    from tqdm import tqdm

    from workspace.jobs import job_cancel
    from workspace.models import JobRun, JobStatus

    bar = tqdm(total=0, desc=f"job {job_id}", file=sys.stderr, dynamic_ncols=True)
    try:
        while True:
            job = JobRun.objects.get(pk=job_id)
            if job.progress_total != bar.total:
                bar.reset(total=job.progress_total)
            bar.n = job.progress_done
            bar.set_postfix_str(f"{job.status} {job.message[-40:]}", refresh=True)
            if job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        job_cancel(job_id=job_id)
        print(f"\nlynkr: asked job {job_id} to cancel", file=sys.stderr)
        return 130
    finally:
        bar.close()
    print(f"job {job_id}: {job.status}: {job.message}")
    return 0 if job.status == JobStatus.SUCCEEDED else 1


def cmd_index(args: argparse.Namespace) -> int:
    from workspace.jobs import job_cancel, job_enqueue
    from workspace.models import JobKind

    if args.cancel is not None:
        ok = job_cancel(job_id=args.cancel)
        print(f"job {args.cancel}: {'cancel requested' if ok else 'not queued or running'}")
        return 0 if ok else 1
    if not args.workspace:
        raise SystemExit("lynkr index: name a workspace (or --cancel JOB)")
    workspace_id = _workspace_id(args.workspace)
    if args.queue:
        from django.db import transaction

        with transaction.atomic():
            job_id = job_enqueue(workspace_id=workspace_id, kind=JobKind.INDEX_REBUILD)
        print(f"queued job {job_id}", file=sys.stderr)
        return _follow(job_id) if args.follow else 0
    from workspace.indexer import index_rebuild

    progress = TqdmProgress(f"indexing {args.workspace}")
    try:
        result: dict[str, Any] = index_rebuild(workspace_id=workspace_id, progress=progress, full=args.full)
    except KeyboardInterrupt:
        print("\nlynkr: indexing interrupted; files indexed so far are kept", file=sys.stderr)
        return 130
    finally:
        progress.close()
    print(
        f"{args.workspace}: {result['files']} files ({result['parsed']} parsed, {result['unchanged']} unchanged, "
        f"{result['removed']} removed), {result['symbols']} symbols in {result['seconds']:.1f}s"
    )
    return 0


def add_parsers(sub: Any) -> None:
    index = sub.add_parser("index", help="index a workspace (progress bar; Ctrl-C stops)")
    index.add_argument("workspace", nargs="?", help="workspace name")
    index.add_argument("--full", action="store_true", help="re-parse every file, not only changed ones")
    index.add_argument("--queue", action="store_true", help="run on a Celery worker instead of in this process")
    index.add_argument("--follow", action="store_true", help="with --queue: show the job's progress until it ends")
    index.add_argument("--cancel", type=int, metavar="JOB", help="cancel a queued or running job")
    index.set_defaults(func=cmd_index)
