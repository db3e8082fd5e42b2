"""Asking an Ollama server about its models: the only I/O of this package (sending a chat is shared, see
``providers.adapters.http``).

``POST /api/show`` gives a model's trained context length and its capabilities; ``GET /api/tags`` lists the local
models (https://github.com/ollama/ollama/blob/main/docs/api.md "Show Model Information", "List Local Models").
The gateway asks before routing, so both never raise: a server that cannot be asked yields ``UNKNOWN`` / ``[]``
and a log line. Answers are kept in-process per (base URL, model) for ``MODEL_INFO_TTL`` seconds (failures for
``FAILURE_TTL``, so a server that comes back is noticed soon and one that is down is not asked on every request).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import orjson

from providers.adapters.common.auth import auth_headers, extra_headers
from providers.adapters.http import http_client
from providers.adapters.ollama.wire import (
    UNKNOWN,
    ModelInfo,
    model_info_parse,
    model_names_parse,
    show_url,
    tags_url,
)
from providers.routing import ProviderConfig

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)

MODEL_INFO_TTL = 600.0
FAILURE_TTL = 30.0
MAX_ENTRIES = 512  # model names come from clients when a provider has no override: bound what they can fill

_clock = time.monotonic
_cache: dict[tuple[str, str], tuple[float, ModelInfo]] = {}


def ollama_model_info_cache_clear() -> None:
    _cache.clear()


def _headers(provider: ProviderConfig) -> list[tuple[str, str]]:
    return [("content-type", "application/json"), ("accept", "application/json")] + (
        auth_headers(provider) + extra_headers(provider)
    )


def _timeout(provider: ProviderConfig) -> httpx.Timeout:
    import httpx

    connect = min(provider.connect_timeout, 5.0)
    return httpx.Timeout(connect=connect, read=10.0, write=10.0, pool=connect)


async def _get_json(provider: ProviderConfig, method: str, url: str, body: bytes | None, what: str) -> object:
    """The decoded JSON answer, or None (logged) when the server cannot be reached or answers badly."""
    import httpx  # here, not at module level: a gateway without Ollama providers never loads it

    try:
        response = await http_client().request(
            method, url, content=body, headers=_headers(provider), timeout=_timeout(provider)
        )
        if response.status_code != 200:
            logger.warning(
                "ollama provider=%s %s: HTTP %s %s",
                provider.name,
                what,
                response.status_code,
                response.content[:200].decode("utf-8", errors="replace"),
            )
            return None
        return orjson.loads(response.content)
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:  # orjson.JSONDecodeError is a ValueError
        logger.warning("ollama provider=%s %s failed: %s: %s", provider.name, what, type(exc).__name__, exc)
        return None


async def ollama_model_info(provider: ProviderConfig, model: str) -> ModelInfo:
    key = (provider.base_url, model)
    cached = _cache.get(key)
    if cached is not None and cached[0] > _clock():
        return cached[1]
    data = await _get_json(
        provider, "POST", show_url(provider.base_url), orjson.dumps({"model": model}), f"show model {model!r}"
    )
    info = UNKNOWN if data is None else model_info_parse(data)
    ttl = FAILURE_TTL if data is None else MODEL_INFO_TTL
    if key not in _cache and len(_cache) >= MAX_ENTRIES:
        del _cache[next(iter(_cache))]  # the oldest entry
    _cache[key] = (_clock() + ttl, info)
    return info


async def ollama_list_models(provider: ProviderConfig) -> list[str]:
    data = await _get_json(provider, "GET", tags_url(provider.base_url), None, "list models")
    return model_names_parse(data)
