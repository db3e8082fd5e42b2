"""The ``web_search`` and ``web_fetch`` tools: thin wrappers reading settings and turning failures into ToolError."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings

from workspace.info import PolicyInfo, ToolContext
from workspace.tools.registry import ToolError, tool
from workspace.web import FetchFailed, SearchFailed, UrlRefused, web_fetch, web_search

logger = logging.getLogger(__name__)

DEFAULT_SEARCH_LIMIT = 5
DEFAULT_MAX_CHARS = 20_000
MAX_CHARS = 200_000


def _web_policy(policy: PolicyInfo, args: dict[str, Any]) -> str | None:
    return None if policy.web_enabled else f"web access is disabled by policy {policy.name!r}"


@tool(
    "web_search",
    "Search the web (through the gateway's SearXNG instance). Returns up to `limit` results with title, url and "
    "snippet; read a result with web_fetch.",
    {
        "type": "object",
        "properties": {
            "query": {"type": "string", "minLength": 1, "maxLength": 1000, "description": "What to search for."},
            "limit": {
                "type": "integer",
                "minimum": 1,
                "maximum": 20,
                "default": DEFAULT_SEARCH_LIMIT,
                "description": "How many results (1-20, default 5).",
            },
        },
        "required": ["query"],
        "additionalProperties": False,
    },
    policy_check=_web_policy,
)
def web_search_tool(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    query = str(args["query"]).strip()
    if not query:
        raise ToolError("query is empty")
    try:
        hits = web_search(
            query,
            endpoint=settings.LYNKR_WEB_SEARCH_ENDPOINT,
            limit=int(args.get("limit", DEFAULT_SEARCH_LIMIT)),
            timeout=settings.LYNKR_WEB_FETCH_TIMEOUT,
        )
    except SearchFailed as exc:
        logger.warning("web_search failed for workspace %s: %s", ctx.workspace.id, exc)
        raise ToolError(str(exc)) from None
    return {"query": query, "results": [dict(hit) for hit in hits]}


@tool(
    "web_fetch",
    "Fetch a public web page (http or https) and return its readable text (HTML is converted to text; JSON, XML "
    "and plain text are returned as they are). Private, loopback and cloud-metadata addresses are refused.",
    {
        "type": "object",
        "properties": {
            "url": {"type": "string", "minLength": 1, "maxLength": 4096, "description": "The http(s) URL."},
            "max_chars": {
                "type": "integer",
                "minimum": 100,
                "maximum": MAX_CHARS,
                "default": DEFAULT_MAX_CHARS,
                "description": f"Return at most this many characters of text (default {DEFAULT_MAX_CHARS}).",
            },
        },
        "required": ["url"],
        "additionalProperties": False,
    },
    policy_check=_web_policy,
)
def web_fetch_tool(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    url = str(args["url"]).strip()
    max_chars = min(int(args.get("max_chars", DEFAULT_MAX_CHARS)), settings.LYNKR_TOOL_OUTPUT_MAX_BYTES)
    try:
        result = web_fetch(
            url,
            max_bytes=settings.LYNKR_WEB_FETCH_MAX_BYTES,
            timeout=settings.LYNKR_WEB_FETCH_TIMEOUT,
            allowed_hosts=settings.LYNKR_WEB_ALLOWED_HOSTS,
            allow_networks=settings.LYNKR_WEB_FETCH_ALLOW_NETWORKS,
        )
    except UrlRefused as exc:
        logger.info("web_fetch refused for workspace %s: %s", ctx.workspace.id, exc)
        raise ToolError(f"refused: {exc}") from None
    except FetchFailed as exc:
        raise ToolError(str(exc)) from None
    text = result.text
    return {
        "url": result.url,
        "final_url": result.final_url,
        "status": result.status,
        "content_type": result.content_type,
        "title": result.title,
        "text": text[:max_chars],
        "truncated": result.truncated or len(text) > max_chars,
    }
