"""workspace_index_rebuild: refresh the index the symbol tools read, queued on a worker or inline."""

from __future__ import annotations

from typing import Any

from workspace import jobs
from workspace.indexer import WorkspaceRootMissing, index_rebuild
from workspace.info import ToolContext
from workspace.models import JobKind, JobRun, JobStatus
from workspace.tools.registry import ToolError, tool


@tool(
    "workspace_index_rebuild",
    "Refresh the workspace's symbol index after files changed (only changed files are re-parsed). By default "
    "it queues a background job and returns its job_id at once; wait=true rebuilds now and returns the counts "
    "(files, parsed, symbols, references ...). full=true (with wait=true) re-parses every file.",
    {
        "type": "object",
        "properties": {
            "full": {"type": "boolean", "default": False, "description": "Re-parse unchanged files too."},
            "wait": {"type": "boolean", "default": False, "description": "Rebuild inline and return the summary."},
        },
        "additionalProperties": False,
    },
)
def workspace_index_rebuild(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    workspace_id = ctx.workspace.id
    pending = (
        JobRun.objects.filter(
            workspace_id=workspace_id,
            kind=JobKind.INDEX_REBUILD,
            status__in=[JobStatus.QUEUED, JobStatus.RUNNING],
            cancel_requested=False,
        )
        .order_by("-created_at")
        .values_list("id", "status")
        .first()
    )
    if args.get("wait", False):
        # Two writers of one index would collide on its rows; the worker's run finishes the job anyway.
        if pending is not None and pending[1] == JobStatus.RUNNING:
            raise ToolError(f"an index rebuild of this workspace is running (job {pending[0]}); retry when it ends")
        try:
            summary = index_rebuild(
                workspace_id=workspace_id, progress=jobs.NullProgress(), full=bool(args.get("full"))
            )
        except WorkspaceRootMissing as exc:
            raise ToolError(str(exc)) from None
        return {"status": "done", **summary}
    # One rebuild at a time: a second request joins the one already queued or running.
    if pending is not None:
        return {"job_id": pending[0], "status": pending[1], "note": "an index rebuild is already pending"}
    job_id = jobs.job_enqueue(  # looked up at call time: tests and callers may replace it
        workspace_id=workspace_id, kind=JobKind.INDEX_REBUILD, user_id=ctx.user_id
    )
    return {"job_id": job_id, "status": "queued"}
