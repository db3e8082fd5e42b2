"""The workspace tools over HTTP, under /v1 beside the Messages API, authenticated by the same API keys.

``GET /v1/workspaces`` lists what the caller may use; ``GET /v1/tools`` lists the tools of the chosen workspace
(``x-lynkr-workspace`` header, else the caller's default) in Anthropic's tool shape, filtered by its policy;
``POST /v1/tools/{name}`` with ``{"arguments": {...}}`` runs one. A tool's own failure is a 200 with
``is_error: true`` (what a model would be shown); an unknown tool is a 404 and a refused one a 403.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse
from ninja import Router

from gateway.auth import request_authenticate
from gateway.db import db_async
from gateway.errors import InvalidRequestError, NotFoundError, PermissionDeniedError
from workspace.context import tool_caller_resolve
from workspace.invoke import tool_invoke, tools_list
from workspace.selectors import workspace_list_for

router = Router()


def _request_id(request: HttpRequest) -> str:
    return str(getattr(request, "lynkr_request_id", ""))


def _json(data: object, status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(data), status=status, content_type="application/json")


@router.get("/workspaces")
async def workspaces(request: HttpRequest) -> HttpResponse:
    key = await request_authenticate(request.headers)
    rows = await db_async(workspace_list_for)(user_id=key.user_id, group_ids=key.group_ids, api_key_id=key.id)
    return _json({"data": [{"name": w.name, "policy": w.policy.name} for w in rows]})


@router.get("/tools")
async def tools(request: HttpRequest) -> HttpResponse:
    caller = await tool_caller_resolve(headers=request.headers, request_id=_request_id(request))
    specs = await tools_list(context=caller.context)
    return _json({"workspace": caller.context.workspace.name, "data": [spec.as_anthropic_tool() for spec in specs]})


@router.post("/tools/{name}")
async def tool_run(request: HttpRequest, name: str) -> HttpResponse:
    caller = await tool_caller_resolve(headers=request.headers, request_id=_request_id(request))
    arguments = _arguments(request.body)
    outcome = await tool_invoke(name=name, arguments=arguments, context=caller.context)
    if outcome.outcome == "unknown":
        raise NotFoundError(outcome.error)
    if outcome.outcome == "denied":
        raise PermissionDeniedError(outcome.error)
    body: dict[str, Any] = {"tool": name, "workspace": caller.context.workspace.name, "is_error": outcome.is_error}
    if outcome.is_error:
        body["error"] = outcome.error
    else:
        body["content"] = outcome.result
    return _json(body)


def _arguments(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequestError('request body must be a JSON object: {"arguments": {...}}')
    arguments = data.get("arguments", {})
    if not isinstance(arguments, dict):
        raise InvalidRequestError("arguments must be a JSON object")
    return arguments
