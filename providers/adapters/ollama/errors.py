"""Ollama error answers -> gateway errors (pure).

Ollama answers a failure with an HTTP status and ``{"error": "<message>"}`` (docs/api/errors.mdx): 400 bad
request (also "<model> does not support tools" / "... does not support thinking"), 404 model not found
("model \\"x\\" not found, try pulling it first"), 429, 500, 502 (a cloud model unreachable).
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from gateway.wire.errors import GatewayError
from providers.adapters.errors import error_for_status
from providers.routing import ProviderConfig


def _message(body: bytes) -> str:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str) and data["error"]:
        return str(data["error"])
    return body[:300].decode("utf-8", errors="replace").strip()


def ollama_error(provider: ProviderConfig, status: int, headers: Mapping[str, str], body: bytes) -> GatewayError:
    message = _message(body) or f"HTTP {status}"
    if status == 404:
        # Claude Code shows a 404 as "There's an issue with the selected model" (claude-code-wire.md §5); say which
        # server lacks the model and how to get it there.
        message = (
            f"provider {provider.name!r} (Ollama at {provider.base_url}) does not have the model: {message} "
            "(run `ollama pull <model>` on that server, or map the client model to one it has)"
        )
    else:
        message = f"upstream: {message}"
    return error_for_status(provider.name, status, message, headers)
