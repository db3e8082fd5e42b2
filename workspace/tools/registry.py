"""The tool registry: name, JSON schema, handler and policy check per tool, imported lazily.

Handlers are synchronous (they touch files, git and the ORM) and take a ``ToolContext`` and validated arguments;
callers in async code run ``tool_call`` through ``gateway.db.db_async``. A handler raises ``ToolError`` for a
failure the model should see (an MCP ``isError`` result); anything else is a bug and is logged.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from workspace.info import PolicyInfo, ToolContext

logger = logging.getLogger(__name__)

# Modules that register tools when imported (house style: a lazily imported registry).
TOOL_MODULES = (
    "workspace.tools.fs",
    "workspace.tools.symbols",
    "workspace.tools.git",
    "workspace.tools.testing",
    "workspace.tools.web",
    "workspace.tools.index",
    "workspace.tools.summary",
    "tasks_app.tools",
    "mcp_app.tools",
)

Handler = Callable[[ToolContext, dict[str, Any]], dict[str, Any]]
PolicyCheck = Callable[[PolicyInfo, dict[str, Any]], str | None]


class ToolError(Exception):
    """A failure the model should read (bad arguments, refused by policy, nothing found)."""


class ToolNotFound(ToolError):
    pass


class ToolDenied(ToolError):
    pass


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str
    input_schema: dict[str, Any]
    handler: Handler
    policy_check: PolicyCheck | None = None
    mutates: bool = False  # changes the workspace (git commit, task create ...): MCP annotations say so

    def as_anthropic_tool(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "input_schema": self.input_schema}


class ToolProvider(Protocol):
    """Tools that exist per caller (the tools of MCP servers a user may use), beside the static registry."""

    def specs(self, context: ToolContext) -> list[ToolSpec]: ...

    def get(self, name: str, context: ToolContext) -> ToolSpec | None: ...


_registry: dict[str, ToolSpec] = {}
_providers: list[ToolProvider] = []
_loaded = False


def provider_register(provider: ToolProvider) -> None:
    if provider not in _providers:
        _providers.append(provider)


def register(spec: ToolSpec) -> ToolSpec:
    if spec.name in _registry and _registry[spec.name] is not spec:
        raise ValueError(f"tool {spec.name!r} is registered twice")
    import jsonschema  # here, not at module level: the server imports this module, jsonschema costs it ~2 MB RSS

    jsonschema.Draft202012Validator.check_schema(spec.input_schema)
    _registry[spec.name] = spec
    return spec


def tool(
    name: str,
    description: str,
    schema: dict[str, Any],
    *,
    policy_check: PolicyCheck | None = None,
    mutates: bool = False,
) -> Callable[[Handler], Handler]:
    """Decorator form of ``register`` for a handler function."""

    def wrap(handler: Handler) -> Handler:
        register(ToolSpec(name, description, schema, handler, policy_check, mutates))
        return handler

    return wrap


def _load() -> None:
    global _loaded
    if not _loaded:
        for module in TOOL_MODULES:
            importlib.import_module(module)
        _loaded = True


def tool_specs() -> dict[str, ToolSpec]:
    _load()
    return dict(_registry)


def tools_for_policy(policy: PolicyInfo) -> list[ToolSpec]:
    return [spec for name, spec in sorted(tool_specs().items()) if policy.allows_tool(name)]


def tools_for_context(context: ToolContext) -> list[ToolSpec]:
    """Every tool this caller may use in this workspace: the registry's and the providers', filtered by policy."""
    specs = {spec.name: spec for spec in tools_for_policy(context.workspace.policy)}
    for provider in _providers:
        for spec in provider.specs(context):
            if spec.name not in specs and context.workspace.policy.allows_tool(spec.name):
                specs[spec.name] = spec
    return [specs[name] for name in sorted(specs)]


def _lookup(name: str, context: ToolContext) -> ToolSpec | None:
    spec = tool_specs().get(name)
    if spec is not None:
        return spec
    for provider in _providers:
        found = provider.get(name, context)
        if found is not None:
            return found
    return None


def tool_call(*, name: str, arguments: dict[str, Any] | None, context: ToolContext) -> dict[str, Any]:
    """Validate, check policy, run. Raises ToolError (the model sees the message) on any refusal."""
    spec = _lookup(name, context)
    if spec is None:
        raise ToolNotFound(f"unknown tool {name!r}")
    policy = context.workspace.policy
    if not policy.allows_tool(name):
        raise ToolDenied(f"tool {name!r} is not allowed by policy {policy.name!r}")
    import jsonschema

    args = dict(arguments or {})
    errors = sorted(jsonschema.Draft202012Validator(spec.input_schema).iter_errors(args), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/".join(str(part) for part in first.absolute_path) or "arguments"
        raise ToolError(f"invalid arguments for {name}: {where}: {first.message}")
    if spec.policy_check is not None:
        refusal = spec.policy_check(policy, args)
        if refusal:
            raise ToolDenied(refusal)
    started = time.perf_counter()
    try:
        return spec.handler(context, args)
    finally:
        logger.debug("tool %s ran in %.1f ms", name, (time.perf_counter() - started) * 1000)
