"""Running a tool from async code: on a bounded thread pool of its own, logged and counted.

Tools do file, git and subprocess work that can take seconds (a test run with ``wait``, a regex search), so they
do not share the gateway's database threads (gateway/db.py): a slow tool never delays accounting. Every call is
logged with who, which tool, a digest of the arguments (never the arguments: they can hold file contents),
the duration and the result size, and counted in ``lynkr_tool_calls`` / ``lynkr_tool_call_duration_seconds``.
"""

from __future__ import annotations

import hashlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connections
from prometheus_client import Counter, Histogram

from workspace.info import ToolContext
from workspace.tools.registry import ToolDenied, ToolError, ToolNotFound, ToolSpec, tool_call, tools_for_context

logger = logging.getLogger(__name__)

TOOL_CALLS = Counter("lynkr_tool_calls", "Workspace and MCP tool calls, by tool and outcome.", ["tool", "outcome"])
TOOL_DURATION = Histogram(
    "lynkr_tool_call_duration_seconds",
    "Duration of a tool call.",
    ["tool"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0),
)


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    result: dict[str, Any] | None
    error: str = ""
    outcome: str = "ok"  # ok, error, denied, unknown

    @property
    def is_error(self) -> bool:
        return self.outcome != "ok"


@cache
def tool_executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=settings.LYNKR_TOOL_THREADS, thread_name_prefix="lynkr-tool")


def arguments_digest(arguments: dict[str, Any] | None) -> str:
    return hashlib.sha256(orjson.dumps(arguments or {}, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def tool_invoke_sync(*, name: str, arguments: dict[str, Any] | None, context: ToolContext) -> ToolOutcome:
    started = time.perf_counter()
    outcome = ToolOutcome(result=None, error="internal error running the tool", outcome="error")
    try:
        outcome = ToolOutcome(result=tool_call(name=name, arguments=arguments, context=context))
    except ToolNotFound as exc:
        outcome = ToolOutcome(result=None, error=str(exc), outcome="unknown")
    except ToolDenied as exc:
        outcome = ToolOutcome(result=None, error=str(exc), outcome="denied")
    except ToolError as exc:
        outcome = ToolOutcome(result=None, error=str(exc), outcome="error")
    except Exception:
        logger.exception("tool %s failed unexpectedly", name)
    finally:
        elapsed = time.perf_counter() - started
        size = len(orjson.dumps(outcome.result)) if outcome.result is not None else len(outcome.error)
        label = name if outcome.outcome != "unknown" else "unknown"  # unknown names must not grow label sets
        TOOL_CALLS.labels(tool=label, outcome=outcome.outcome).inc()
        TOOL_DURATION.labels(tool=label).observe(elapsed)
        logger.info(
            "tool call tool=%s workspace=%s user_id=%s api_key_id=%s arguments_digest=%s outcome=%s "
            "duration_ms=%.1f result_bytes=%d",
            name,
            context.workspace.name,
            context.user_id,
            context.api_key_id,
            arguments_digest(arguments),
            outcome.outcome,
            elapsed * 1000,
            size,
        )
    return outcome


def _managed_invoke(name: str, arguments: dict[str, Any] | None, context: ToolContext) -> ToolOutcome:
    close_old_connections()
    try:
        return tool_invoke_sync(name=name, arguments=arguments, context=context)
    finally:
        if not settings.DATABASES["default"].get("CONN_MAX_AGE"):
            connections.close_all()


async def tool_invoke(*, name: str, arguments: dict[str, Any] | None, context: ToolContext) -> ToolOutcome:
    """Run a tool from async code (the /v1/tools API, the MCP endpoint, the server-side tool loop)."""
    run = sync_to_async(_managed_invoke, thread_sensitive=False, executor=tool_executor())
    return await run(name, arguments, context)


def _managed_list(context: ToolContext) -> list[ToolSpec]:
    close_old_connections()
    try:
        return tools_for_context(context)
    finally:
        if not settings.DATABASES["default"].get("CONN_MAX_AGE"):
            connections.close_all()


async def tools_list(*, context: ToolContext) -> list[ToolSpec]:
    """The tools this caller may use, from async code (MCP servers' tool lists read the ORM and may connect)."""
    return await sync_to_async(_managed_list, thread_sensitive=False, executor=tool_executor())(context)
