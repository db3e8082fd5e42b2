"""The ``workspace_test_*`` tools: run the workspace's tests (queued or inline), read history and a summary."""

from __future__ import annotations

import logging
from typing import Any

from workspace.info import ToolContext
from workspace.jobs import job_enqueue
from workspace.models import JobKind
from workspace.testing import selectors as test_selectors
from workspace.testing import service as test_service
from workspace.tools.registry import ToolError, tool

logger = logging.getLogger(__name__)

# The model rarely needs more than the end of the output (failures and the runner's summary are printed last).
OUTPUT_TAIL_CHARS = 12_000
DEFAULT_HISTORY = 10


@tool(
    "workspace_test_run",
    "Run the workspace's configured test command (sandboxed, without a shell). By default the run is queued as a "
    "background job and its job_id is returned: read the outcome later with workspace_test_summary or "
    "workspace_test_history. With wait=true the tests run now and the result (outcome, counts, coverage and the "
    "end of the output) is returned; this can take up to the workspace's test timeout.",
    {
        "type": "object",
        "properties": {
            "wait": {
                "type": "boolean",
                "default": False,
                "description": "true: run now and return the result; false (default): queue a job.",
            },
        },
        "additionalProperties": False,
    },
    mutates=True,  # runs code in the workspace, which may write files, and records a run
)
def workspace_test_run(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    if not ctx.workspace.test_command.strip():
        raise ToolError(
            "this workspace has no test command: an admin must set the workspace's test command "
            "(or WORKSPACE_TEST_COMMAND)"
        )
    if not args.get("wait", False):
        job_id = job_enqueue(workspace_id=ctx.workspace.id, kind=JobKind.TEST_RUN, user_id=ctx.user_id)
        return {
            "job_id": job_id,
            "status": "queued",
            "message": "tests queued; see workspace_test_summary or workspace_test_history for the outcome",
        }
    try:
        run_id = test_service.test_run_execute(workspace_id=ctx.workspace.id, user_id=ctx.user_id)
    except test_service.NoTestCommand as exc:
        raise ToolError(str(exc)) from None
    run = test_selectors.test_run_get(test_run_id=run_id)
    tail = str(run.pop("output_tail", ""))
    if len(tail) > OUTPUT_TAIL_CHARS:
        tail = f"[... {len(tail) - OUTPUT_TAIL_CHARS} characters omitted ...]\n{tail[-OUTPUT_TAIL_CHARS:]}"
    return {**run, "output_tail": tail}


@tool(
    "workspace_test_history",
    "The workspace's recent test runs, newest first: outcome, counts, coverage, duration and the tree they ran on.",
    {
        "type": "object",
        "properties": {
            "limit": {
                "type": "integer",
                "minimum": 1,
                "maximum": 50,
                "default": DEFAULT_HISTORY,
                "description": f"How many runs (1-50, default {DEFAULT_HISTORY}).",
            },
        },
        "additionalProperties": False,
    },
)
def workspace_test_history(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    runs = test_selectors.test_run_history(workspace_id=ctx.workspace.id, limit=int(args.get("limit", DEFAULT_HISTORY)))
    return {"runs": runs, "count": len(runs)}


@tool(
    "workspace_test_summary",
    "The latest test run of the workspace: outcome, counts, pass rate, coverage (or why there is none), the trend "
    "against the previous run and hints when the same command flips between passing and failing.",
    {"type": "object", "properties": {}, "additionalProperties": False},
)
def workspace_test_summary(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    summary = test_selectors.test_summary(workspace_id=ctx.workspace.id)
    summary["test_command"] = ctx.workspace.test_command
    return summary
