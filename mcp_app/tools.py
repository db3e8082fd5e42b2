"""MCP servers' tools in the workspace tool registry.

Every allowed tool of every enabled server the caller may use is a registry tool named ``mcp_<server>_<tool>``
(a ``ToolProvider``: the set depends on the caller), plus two static tools: ``workspace_mcp_servers`` lists the
servers and their tools, ``workspace_mcp_call`` calls one by server and tool name. A server the caller may not
use is invisible: its tools are not listed and calling it fails exactly like calling one that does not exist.
Tool lists come from the client's cache (about a minute), so listing does not contact every server each time.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Mapping
from typing import Any

import jsonschema

from mcp_app import config
from mcp_app.client import McpClientError, mcp_manager
from mcp_app.info import McpServerConfig, McpTool
from mcp_app.results import result_error_text, result_payload
from mcp_app.selectors import mcp_server_for_user, mcp_servers_for_user
from workspace.info import PolicyInfo, ToolContext
from workspace.tools.registry import Handler, ToolError, ToolSpec, provider_register, tool

logger = logging.getLogger(__name__)

MAX_TOOL_NAME = 64  # the Anthropic API's limit on a tool name
MAX_DESCRIPTION = 1024
_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
_PERMISSIVE_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


def server_prefix(server: str) -> str:
    return _UNSAFE.sub("_", f"mcp_{server}_")


def exposed_name(server: str, tool_name: str, *, hashed: bool = False) -> str:
    """``mcp_<server>_<tool>`` in [a-zA-Z0-9_-], at most 64 characters; a name too long (or taken by another tool
    of the same server after sanitising) ends with a digest of the real names instead."""
    name = _UNSAFE.sub("_", f"mcp_{server}_{tool_name}")
    if hashed or len(name) > MAX_TOOL_NAME:
        digest = hashlib.sha256(f"{server}\0{tool_name}".encode()).hexdigest()[:8]
        name = f"{name[: MAX_TOOL_NAME - 9]}_{digest}"
    return name


def tool_schema(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The tool's inputSchema as a valid JSON Schema object schema (MCP requires ``type: object``); one that is
    not becomes a permissive object schema and the server validates the arguments itself."""
    schema = dict(raw) if isinstance(raw, Mapping) else {}
    if "type" not in schema and isinstance(schema.get("properties"), dict):
        schema["type"] = "object"
    if schema.get("type") != "object":
        return dict(_PERMISSIVE_SCHEMA)
    schema.setdefault("properties", {})
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError:
        return dict(_PERMISSIVE_SCHEMA)
    return schema


def mcp_call(
    server: McpServerConfig, tool_name: str, arguments: dict[str, Any], context: ToolContext
) -> dict[str, Any]:
    """Call ``tool_name`` on ``server`` for ``context``; the result bounded by LYNKR_TOOL_OUTPUT_MAX_BYTES."""
    try:
        result = mcp_manager().call_tool(
            server, tool=tool_name, arguments=arguments, workspace_root=context.workspace.root
        )
    except McpClientError as exc:
        raise ToolError(str(exc)) from None
    limit = config.output_max_bytes()
    if result.is_error:
        raise ToolError(f"{tool_name} (MCP server {server.name}) failed: {result_error_text(result, max_bytes=limit)}")
    return result_payload(result, max_bytes=limit)


def _handler(server: McpServerConfig, tool_name: str) -> Handler:
    def run(context: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
        return mcp_call(server, tool_name, args, context)

    return run


def _listed(server: McpServerConfig, context: ToolContext) -> tuple[McpTool, ...]:
    """The server's tools (cached by the client); none when it cannot be reached (the client logs why)."""
    try:
        return mcp_manager().list_tools(server, workspace_root=context.workspace.root)
    except McpClientError as exc:
        logger.debug("MCP server %s offers no tools now: %s", server.name, exc)
        return ()


def _on_event_loop() -> bool:
    """Listing reads the database and may start a server: never on an event loop. A caller in async code must go
    through a thread (``db_async(tools_for_context)``); one that does not gets no MCP tools, and a warning."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    logger.warning("MCP tools asked for on an event loop: skipped (run tools_for_context in a thread)")
    return True


class McpToolProvider:
    """The ``mcp_<server>_<tool>`` tools of the servers the caller may use (ToolProvider of the registry)."""

    def __init__(self) -> None:
        # (server id, fingerprint) -> (the client's tool tuple, its specs): rebuilt when the client relists.
        self._built: dict[tuple[int, str], tuple[tuple[McpTool, ...], list[ToolSpec]]] = {}

    def _server_specs(self, server: McpServerConfig, context: ToolContext) -> list[ToolSpec]:
        tools = _listed(server, context)
        key = (server.id, repr((server.name, server.fingerprint(), server.tool_allow, server.tool_deny)))
        built = self._built.get(key)
        if built is not None and built[0] is tools:
            return built[1]
        specs: list[ToolSpec] = []
        taken: set[str] = set()
        for item in tools:
            if not server.allows_tool(item.name):
                continue
            name = exposed_name(server.name, item.name)
            if name in taken:
                name = exposed_name(server.name, item.name, hashed=True)
            taken.add(name)
            description = f"[MCP server {server.name}] {item.description}".strip()[:MAX_DESCRIPTION]
            specs.append(
                ToolSpec(
                    name=name,
                    description=description,
                    input_schema=tool_schema(item.input_schema),
                    handler=_handler(server, item.name),
                    mutates=not item.read_only,
                )
            )
        self._built[key] = (tools, specs)
        return specs

    def specs(self, context: ToolContext) -> list[ToolSpec]:
        if _on_event_loop():
            return []
        return [
            spec
            for server in mcp_servers_for_user(user_id=context.user_id)
            for spec in self._server_specs(server, context)
        ]

    def get(self, name: str, context: ToolContext) -> ToolSpec | None:
        if not name.startswith("mcp_") or _on_event_loop():
            return None
        for server in mcp_servers_for_user(user_id=context.user_id):
            if name.startswith(server_prefix(server.name)):
                for spec in self._server_specs(server, context):
                    if spec.name == name:
                        return spec
        return None


provider = McpToolProvider()
provider_register(provider)


def _tool_view(server: McpServerConfig, item: McpTool) -> dict[str, Any]:
    return {
        "tool": item.name,
        "tool_name": exposed_name(server.name, item.name),
        "description": item.description[:MAX_DESCRIPTION],
        "input_schema": tool_schema(item.input_schema),
    }


def _visible(server: McpServerConfig, item: McpTool, policy: PolicyInfo) -> bool:
    return server.allows_tool(item.name) and policy.allows_tool(exposed_name(server.name, item.name))


@tool(
    "workspace_mcp_servers",
    "List the MCP servers you may use through the gateway and their tools (name, description, input schema). "
    "Call a tool with workspace_mcp_call, or directly as mcp_<server>_<tool>.",
    {
        "type": "object",
        "properties": {"server": {"type": "string", "description": "Only this server."}},
        "additionalProperties": False,
    },
)
def workspace_mcp_servers(context: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    servers = mcp_servers_for_user(user_id=context.user_id)
    wanted = args.get("server")
    if wanted is not None:
        servers = [server for server in servers if server.name == wanted]
        if not servers:
            raise ToolError(f"no such MCP server {wanted!r}")
    listing: list[dict[str, Any]] = []
    for server in servers:
        entry: dict[str, Any] = {"name": server.name, "transport": server.transport}
        try:
            tools = mcp_manager().list_tools(server, workspace_root=context.workspace.root)
        except McpClientError as exc:
            entry["error"] = str(exc)
            tools = ()
        entry["tools"] = [
            _tool_view(server, item) for item in tools if _visible(server, item, context.workspace.policy)
        ]
        listing.append(entry)
    return {"servers": listing}


def _call_policy(policy: PolicyInfo, args: dict[str, Any]) -> str | None:
    name = exposed_name(str(args.get("server", "")), str(args.get("tool", "")))
    if policy.allows_tool(name):
        return None
    return f"tool {name!r} is not allowed by policy {policy.name!r}"


@tool(
    "workspace_mcp_call",
    "Call a tool of an MCP server (see workspace_mcp_servers) with its arguments.",
    {
        "type": "object",
        "properties": {
            "server": {"type": "string", "minLength": 1, "description": "The MCP server's name."},
            "tool": {"type": "string", "minLength": 1, "description": "The tool's name on that server."},
            "arguments": {"type": "object", "description": "The tool's arguments (its input schema)."},
        },
        "required": ["server", "tool"],
        "additionalProperties": False,
    },
    policy_check=_call_policy,
    mutates=True,
)
def workspace_mcp_call(context: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    name = args["server"]
    server = mcp_server_for_user(name=name, user_id=context.user_id)
    if server is None:
        raise ToolError(f"no such MCP server {name!r}")
    tool_name = args["tool"]
    try:
        tools = mcp_manager().list_tools(server, workspace_root=context.workspace.root)
    except McpClientError as exc:
        raise ToolError(str(exc)) from None
    found = next((item for item in tools if item.name == tool_name and server.allows_tool(item.name)), None)
    if found is None:
        raise ToolError(f"MCP server {name!r} has no tool {tool_name!r}")
    arguments = dict(args.get("arguments") or {})
    schema = tool_schema(found.input_schema)
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(arguments), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(part) for part in errors[0].absolute_path) or "arguments"
        raise ToolError(f"invalid arguments for {tool_name}: {where}: {errors[0].message}")
    return mcp_call(server, tool_name, arguments, context)
