"""Exact-match response cache (the seed's prompt cache): a repeated request is answered without an upstream call.

Key: SHA-256 over canonical JSON (orjson, sorted keys) of the request body and the routed provider/model. The body
counts field by field *except* what cannot change the answer (``stream``, ``metadata``, ``context_management``,
``cache_control`` markers), so a field added to the API later counts by default: a false miss costs one upstream
call, a false hit serves a wrong answer. A null field counts as absent. Markers are stripped where the API puts them
(top level, system blocks, message blocks and the blocks nested in their ``content``, tool definitions), without
copying the body when there are none; a ``cache_control`` key inside a tool's input or schema is data and counts.

Policy: only tool-free, non-thinking requests without an explicit ``temperature > 0`` are cached (an explicit
temperature above zero asks for variety; an absent one is the common case and is cached), and only
complete answers (``message_stop``, stop reason end_turn/stop_sequence/max_tokens, no error, some content).

Stores: ``LocalResponseCache`` (LRU + TTL in process) or ``RedisResponseCache`` (shared by every process) when
REDIS_URL is set. Both hold the orjson of the recorded events, so a caller can never mutate a stored answer.
A cache never fails a request: a Redis error is logged and counts as a miss.
"""

from __future__ import annotations

import hashlib
import logging
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from functools import cache
from typing import Any, Protocol

import orjson

from providers.redis_clients import LoopRedis

logger = logging.getLogger(__name__)

Event = dict[str, Any]

# Top-level body fields that do not change the answer. context_management only edits old thinking/tool blocks out
# of the context, and cached requests carry neither.
_IGNORED = frozenset({"stream", "metadata", "context_management", "cache_control"})
_KEY_VERSION = 1  # bump when the canonical form changes, so old entries are never read as new ones
_CACHE_TOKEN_FIELDS = ("cache_read_input_tokens", "cache_creation_input_tokens")
_COMPLETE_STOPS = frozenset({"end_turn", "stop_sequence", "max_tokens"})


def _strip_blocks(blocks: Any) -> Any:
    """``blocks`` without ``cache_control`` markers; a list is copied only when something was stripped."""
    if not isinstance(blocks, list):
        return blocks  # a string prompt carries no markers
    out: list[Any] | None = None
    for index, block in enumerate(blocks):
        if type(block) is not dict:
            continue
        nested = block.get("content")
        # tool_result / search_result blocks hold blocks of their own
        stripped_nested = _strip_blocks(nested) if type(nested) is list else nested
        if "cache_control" not in block and stripped_nested is nested:
            continue
        new = {k: v for k, v in block.items() if k != "cache_control"}
        if "content" in new:
            new["content"] = stripped_nested
        if out is None:
            out = list(blocks)
        out[index] = new
    return blocks if out is None else out


def _strip_messages(messages: Any) -> Any:
    if not isinstance(messages, list):
        return messages
    out: list[Any] | None = None
    for index, message in enumerate(messages):
        content = message.get("content") if type(message) is dict else None
        if type(content) is not list:
            continue  # a string prompt carries no markers
        stripped = _strip_blocks(content)
        if stripped is not content:
            if out is None:
                out = list(messages)
            out[index] = {**message, "content": stripped}
    return messages if out is None else out


def cache_key(body: dict[str, Any], *, provider: str, upstream_model: str) -> str:
    """The hex SHA-256 that identifies ``body``'s answer on the route ``provider``/``upstream_model``."""
    fields: dict[str, Any] = {}
    for name, value in body.items():
        if name in _IGNORED or value is None:
            continue
        if name in ("temperature", "top_p") and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)  # 1 and 1.0 ask for the same thing
        fields[name] = value
    payload = {"v": _KEY_VERSION, "route": [provider, upstream_model], "body": fields}
    data = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    if b'"cache_control"' in data:  # walk the blocks (a Python loop) only when there may be a marker to strip
        for name, strip in (("messages", _strip_messages), ("system", _strip_blocks), ("tools", _strip_blocks)):
            if name in fields:
                fields[name] = strip(fields[name])
        data = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(data).hexdigest()


def cacheable(body: dict[str, Any], *, allow_tools: bool = False) -> bool:
    """Whether the default policy caches ``body``'s answer (decide before the upstream call)."""
    if not allow_tools and (body.get("tools") or body.get("mcp_servers")):
        return False  # a tool call's answer depends on the world outside the prompt
    thinking = body.get("thinking")
    if thinking is not None and not (isinstance(thinking, dict) and thinking.get("type") == "disabled"):
        return False
    temperature = body.get("temperature")
    return not (isinstance(temperature, int | float) and temperature > 0)


def cacheable_result(events: list[Event]) -> bool:
    """Whether the recorded ``events`` are a complete answer worth replaying."""
    if not events or events[0].get("type") != "message_start":
        return False
    last = next((e for e in reversed(events) if e.get("type") != "ping"), None)
    if last is None or last.get("type") != "message_stop":
        return False
    stop_reason = (events[0].get("message") or {}).get("stop_reason")
    has_content = bool((events[0].get("message") or {}).get("content"))
    for event in events:
        kind = event.get("type")
        if kind == "error":
            return False
        if kind == "message_delta":
            stop_reason = (event.get("delta") or {}).get("stop_reason") or stop_reason
        elif kind == "content_block_start":
            has_content = True
    return has_content and stop_reason in _COMPLETE_STOPS


def _pack(events: list[Event], *, compress_over: int) -> bytes:
    raw = orjson.dumps(events)
    if len(raw) > compress_over:
        # Level 1: most of the gain on text at a fraction of level 6's CPU (this runs on the event loop).
        return b"z" + zlib.compress(raw, 1)
    return b"j" + raw


def _unpack(blob: bytes) -> list[Event]:
    tag, body = blob[:1], blob[1:]
    if tag == b"z":
        body = zlib.decompress(body)
    elif tag != b"j":
        raise ValueError(f"unknown response cache value tag {tag!r}")
    events = orjson.loads(body)
    if not isinstance(events, list):
        raise ValueError("response cache value is not an event list")
    return events


class ResponseCache(Protocol):
    async def get(self, key: str) -> list[Event] | None: ...

    async def put(self, key: str, events: list[Event]) -> None: ...


class LocalResponseCache:
    """In-process LRU with a TTL per entry (counted from ``put``; a hit refreshes recency, not the expiry)."""

    def __init__(self, *, max_entries: int, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self.ttl = ttl
        self.clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> list[Event] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, blob = entry
        if self.clock() >= expires_at:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return _unpack(blob)

    async def put(self, key: str, events: list[Event]) -> None:
        if self.max_entries <= 0 or self.ttl <= 0:
            return
        self._entries[key] = (self.clock() + self.ttl, b"j" + orjson.dumps(events))  # memory is cheap; CPU is not
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


class RedisResponseCache:
    """Answers shared by every process through Redis: ``<prefix><key>`` holds the packed events with a TTL.

    ``max_entries`` is not enforced here: entries leave by their TTL or by Redis's own ``maxmemory-policy``.
    Values over ``compress_over`` bytes are zlib-compressed (answers are text and shrink several times).
    """

    def __init__(
        self, url: str, *, ttl: float, prefix: str = "lynkr:rc:", compress_over: int = 4096, timeout: float = 1.0
    ) -> None:
        self.ttl = ttl
        self.prefix = prefix
        self.compress_over = compress_over
        self._redis = LoopRedis(url, timeout=timeout)

    def _client(self) -> Any:
        return self._redis.get()[0]

    async def get(self, key: str) -> list[Event] | None:
        from redis.exceptions import RedisError

        try:
            blob = await self._client().get(self.prefix + key)
            return None if blob is None else _unpack(blob)
        except (RedisError, OSError, TimeoutError, ValueError, zlib.error) as exc:
            logger.warning("response cache read failed, treated as a miss: %s", type(exc).__name__)
            return None

    async def put(self, key: str, events: list[Event]) -> None:
        from redis.exceptions import RedisError

        if self.ttl <= 0:
            return
        blob = _pack(events, compress_over=self.compress_over)
        try:
            await self._client().set(self.prefix + key, blob, px=max(1, round(self.ttl * 1000)))
        except (RedisError, OSError, TimeoutError) as exc:
            logger.warning("response cache write failed, answer not cached: %s", type(exc).__name__)

    async def aclose(self) -> None:
        """Close this event loop's client (shutdown and tests)."""
        await self._redis.close()


@cache
def response_cache() -> ResponseCache | None:
    """The process's response cache: Redis when REDIS_URL is set, else in process; None when disabled."""
    from django.conf import settings

    if not getattr(settings, "LYNKR_PROMPT_CACHE_ENABLED", True):
        return None
    ttl = float(getattr(settings, "LYNKR_PROMPT_CACHE_TTL", 300.0))
    max_entries = int(getattr(settings, "LYNKR_PROMPT_CACHE_MAX_ENTRIES", 64))
    if ttl <= 0:
        return None
    url = getattr(settings, "REDIS_URL", None)
    if url:
        return RedisResponseCache(url, ttl=ttl)
    if max_entries <= 0:
        return None
    return LocalResponseCache(max_entries=max_entries, ttl=ttl)


def _honest_usage(usage: dict[str, Any], prompt_tokens: int) -> dict[str, Any]:
    out = dict(usage)
    if "input_tokens" in out:
        out["input_tokens"] = prompt_tokens
    for name in _CACHE_TOKEN_FIELDS:
        if name in out:
            out[name] = 0
    if isinstance(out.get("cache_creation"), dict):
        out["cache_creation"] = dict.fromkeys(out["cache_creation"], 0)
    return out


def replay_events(events: list[Event], *, client_model: str, message_id: str) -> list[Event]:
    """The recorded ``events`` as the answer to a cache hit (new list; the recorded dicts are not changed).

    The message gets ``message_id`` and ``client_model``. Usage stays the size of the answer, but no provider cache
    was read or written on a hit: cache_read/cache_creation tokens become 0 and are folded into ``input_tokens``,
    so input_tokens is still the whole prompt. That the gateway served it is said by the ``x-lynkr-cache: hit``
    header, not by invented usage fields. Pings carry nothing and are dropped.
    """
    totals: dict[str, Any] = {}
    for event in events:
        kind = event.get("type")
        if kind == "message_start":
            totals.update((event.get("message") or {}).get("usage") or {})
        elif kind == "message_delta":
            totals.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
    prompt_tokens = sum(int(totals.get(name) or 0) for name in ("input_tokens", *_CACHE_TOKEN_FIELDS))

    out: list[Event] = []
    for event in events:
        kind = event.get("type")
        if kind == "ping":
            continue
        if kind == "message_start":
            message = dict(event.get("message") or {})
            usage = {"input_tokens": 0, **(message.get("usage") or {}), **dict.fromkeys(_CACHE_TOKEN_FIELDS, 0)}
            message.update(id=message_id, model=client_model, usage=_honest_usage(usage, prompt_tokens))
            event = {**event, "message": message}
        elif kind == "message_delta" and event.get("usage"):
            event = {**event, "usage": _honest_usage(event["usage"], prompt_tokens)}
        out.append(event)
    return out
