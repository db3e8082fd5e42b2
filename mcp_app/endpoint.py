"""The gateway as an MCP server: the caller's workspace tools, listed and called over MCP (official SDK, low level).

``tools/list`` answers what ``/v1/tools`` answers (the workspace tools and the tools of the MCP servers the caller
may use, filtered by the workspace's policy) in MCP's shape, with annotations from ``ToolSpec.mutates``;
``tools/call`` runs the tool through ``workspace.invoke.tool_invoke``, which logs and counts every call. A tool's
failure, an unknown tool and a tool the policy refuses are all tool results with ``isError: true``: the MCP spec
reports tool-level failures in the result so the model can read them, not as protocol errors
(https://modelcontextprotocol.io/specification/2025-11-25/server/tools#error-handling).

The caller is authenticated before the request reaches the SDK (mcp_app/asgi.py), which puts a ``ToolCaller`` in
the ASGI scope; the SDK hands the HTTP request to each handler as ``ctx.request``, so the handlers read it there.
"""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import mcp_types as types
import orjson
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server

from workspace.context import ToolCaller
from workspace.invoke import tool_invoke, tools_list
from workspace.tools.registry import ToolSpec

logger = logging.getLogger(__name__)

# The ASGI scope key under which mcp_app/asgi.py passes the authenticated caller to the handlers.
CALLER_SCOPE_KEY = "lynkr.tool_caller"

INSTRUCTIONS = (
    "Lynkr workspace tools: read and search the team's repository (fs_*, workspace_search, symbol index), git, "
    "tests and tasks, under the workspace's policy. Paths are relative to the workspace root. If a symbol tool "
    "says the workspace is not indexed, call workspace_index_rebuild with wait=true first."
)


class CallerMissing(RuntimeError):
    """A handler ran without an authenticated caller in its request (the server was mounted without asgi.py)."""


def request_caller(ctx: ServerRequestContext[Any, Any]) -> ToolCaller:
    scope = getattr(ctx.request, "scope", None)
    caller = scope.get(CALLER_SCOPE_KEY) if isinstance(scope, dict) else None
    if not isinstance(caller, ToolCaller):
        raise CallerMissing("MCP request without an authenticated caller")
    return caller


def mcp_tool(spec: ToolSpec) -> types.Tool:
    """A registry tool in MCP's shape. Read-only tools say so; mutating ones are flagged destructive so a client
    (Claude Code) can ask before running them."""
    return types.Tool(
        name=spec.name,
        description=spec.description,
        input_schema=spec.input_schema,
        annotations=types.ToolAnnotations(read_only_hint=not spec.mutates, destructive_hint=spec.mutates),
    )


def text_result(text: str, *, is_error: bool) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=is_error)


async def list_tools(
    ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    caller = request_caller(ctx)
    # On the tools' thread pool, not the database one: a tool provider reads the database and may have to ask an
    # MCP server for its tools (seconds, when it starts), which must not hold up accounting's database threads.
    specs = await tools_list(context=caller.context)
    return types.ListToolsResult(tools=[mcp_tool(spec) for spec in specs])


async def call_tool(ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams) -> types.CallToolResult:
    caller = request_caller(ctx)
    outcome = await tool_invoke(name=params.name, arguments=params.arguments, context=caller.context)
    if outcome.is_error:
        return text_result(outcome.error, is_error=True)
    return text_result(orjson.dumps(outcome.result).decode(), is_error=False)


def _version() -> str:
    try:
        return version("lynkr")
    except PackageNotFoundError:
        return ""


def mcp_server_build() -> Server[Any]:
    """The low-level MCP server answering ``tools/list`` and ``tools/call`` for the caller in the request."""
    return Server(
        "lynkr",
        version=_version(),
        title="Lynkr workspace tools",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )
