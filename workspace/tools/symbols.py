"""Symbol tools over the workspace index: search definitions, find references, goto definition.

Results come from the last index run (workspace_index_rebuild refreshes it) and never show a file the policy
denies (fs_allow_globs / fs_deny_globs and the always-denied .env / *.pem).
"""

from __future__ import annotations

from typing import Any

import orjson
from django.conf import settings

from workspace.index.values import SYMBOL_KINDS
from workspace.index_selectors import index_status, symbol_definition, symbol_references, symbol_search
from workspace.info import ToolContext
from workspace.paths import PathRefused, normalise_relative
from workspace.tools.registry import ToolError, tool

MAX_SEARCH = 200
MAX_REFERENCES = 500
MAX_DEFINITIONS = 10

_SYMBOL = {"type": "string", "minLength": 1, "maxLength": 300}


def _require_index(ctx: ToolContext) -> str:
    """The time of the last index run, or ToolError when the workspace was never indexed."""
    status = index_status(workspace_id=ctx.workspace.id)
    if status.indexed_at is None:
        raise ToolError(
            f"workspace {ctx.workspace.name!r} has not been indexed yet; call workspace_index_rebuild with "
            "wait=true, then retry"
        )
    return status.indexed_at.isoformat()


def _bounded(items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
    """As many items as fit in LYNKR_TOOL_OUTPUT_MAX_BYTES (long paths add up), and whether some were cut."""
    budget: int = settings.LYNKR_TOOL_OUTPUT_MAX_BYTES - 512  # room for the envelope
    kept: list[dict[str, Any]] = []
    for item in items:
        budget -= len(orjson.dumps(item)) + 1
        if budget < 0:
            return kept, True
        kept.append(item)
    return kept, False


def _stale_note(indexed_at: str) -> str:
    return f"nothing found in the index built at {indexed_at}; if files changed since, call workspace_index_rebuild"


@tool(
    "workspace_symbol_search",
    "Find definitions (functions, methods, classes, interfaces, types, constants ...) in the workspace index by "
    "name: exact matches first, then prefix and substring matches, case-insensitively. 'Class.method' narrows "
    "to a container. Returns path, line, end_line, kind and container of each.",
    {
        "type": "object",
        "properties": {
            "query": {**_SYMBOL, "description": "A name, a prefix or part of a name, or Container.name."},
            "kind": {"type": "string", "enum": list(SYMBOL_KINDS), "description": "Only this kind of definition."},
            "limit": {"type": "integer", "minimum": 1, "maximum": MAX_SEARCH, "default": 50},
        },
        "required": ["query"],
        "additionalProperties": False,
    },
)
def workspace_symbol_search(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    indexed_at = _require_index(ctx)
    limit = int(args.get("limit", 50))
    hits = symbol_search(workspace_id=ctx.workspace.id, query=args["query"], kind=args.get("kind"), limit=limit + 1)
    visible = [hit for hit in hits if ctx.workspace.policy.allows_path(hit.path)]
    symbols, cut = _bounded([hit.as_dict() for hit in visible[:limit]])
    out: dict[str, Any] = {"query": args["query"], "symbols": symbols, "truncated": cut or len(hits) > limit}
    if not visible:
        out["note"] = _stale_note(indexed_at)
    return out


@tool(
    "workspace_symbol_references",
    "Find where a name is used in the workspace: calls, type uses and imports, with path, line and column. "
    "Matching is by exact name (for 'Class.method' the method name), not by type analysis.",
    {
        "type": "object",
        "properties": {
            "symbol": {**_SYMBOL, "description": "The name used, e.g. 'render' or 'Widget.render'."},
            "limit": {"type": "integer", "minimum": 1, "maximum": MAX_REFERENCES, "default": 100},
        },
        "required": ["symbol"],
        "additionalProperties": False,
    },
)
def workspace_symbol_references(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    indexed_at = _require_index(ctx)
    limit = int(args.get("limit", 100))
    hits = symbol_references(workspace_id=ctx.workspace.id, name=args["symbol"], limit=limit + 1)
    visible = [hit for hit in hits if ctx.workspace.policy.allows_path(hit.path)]
    references, cut = _bounded(
        [{"path": hit.path, "line": hit.line, "column": hit.column, "kind": hit.kind} for hit in visible[:limit]]
    )
    out: dict[str, Any] = {"symbol": args["symbol"], "references": references, "truncated": cut or len(hits) > limit}
    if not visible:
        out["note"] = _stale_note(indexed_at)
    return out


@tool(
    "workspace_goto_definition",
    "Where a symbol is defined. Give from_path (the file where you saw the name) to rank first the definitions "
    "in files it imports, then in the file itself. Returns up to 10 candidates, best first.",
    {
        "type": "object",
        "properties": {
            "symbol": {**_SYMBOL, "description": "The name, e.g. 'helper' or 'Model.save'."},
            "from_path": {"type": "string", "maxLength": 1000, "description": "File using the name, from the root."},
        },
        "required": ["symbol"],
        "additionalProperties": False,
    },
)
def workspace_goto_definition(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    indexed_at = _require_index(ctx)
    from_path = None
    if args.get("from_path"):
        try:
            from_path = normalise_relative(args["from_path"]) or None
        except PathRefused as exc:
            raise ToolError(str(exc)) from None
    hits = symbol_definition(
        workspace_id=ctx.workspace.id, name=args["symbol"], from_path=from_path, limit=MAX_DEFINITIONS
    )
    visible = [hit for hit in hits if ctx.workspace.policy.allows_path(hit.path)]
    definitions, _ = _bounded([hit.as_dict() for hit in visible])
    out: dict[str, Any] = {"symbol": args["symbol"], "definitions": definitions}
    if not visible:
        out["note"] = _stale_note(indexed_at)
    return out
