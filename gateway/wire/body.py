"""A /v1/messages body, parsed once per distinct tools array (pure).

Claude Code sends its tool definitions with every turn: 24 tools, ~63 KB of a ~77 KB turn, byte-identical from one
turn to the next (claude-code-wire.md §3). Parsing, validating and translating them was the largest part of the
gateway's own work per request. Here the top level is split without building objects (``msgspec.Raw`` keeps each
value's bytes), every other field is parsed with orjson as before, and the tools are parsed and validated once per
distinct bytes: a request whose tools match earlier bytes gets the same ``SharedTools`` object, on which adapters
keep what they derive from it (their translation, see ``SharedTools.memo``).

A turn whose tools are byte for byte those its scope sent last (every turn of a Claude Code session) is not split
at all: its tools are found by their member name and compared, and the rest is parsed around them
(``_with_known_tools``).

Entries are per scope (the caller passes the user): one user's tools are never handed to another, nor can timing
tell a user what another sent. The cache is small and bounded (``TOOLS_CACHE_ENTRIES``); a miss costs what parsing
cost before, plus a copy of the bytes.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, NoReturn, TypeVar, cast

import msgspec
import orjson

# Distinct (user, tools) pairs kept; each holds the bytes, the parsed tools and what adapters derived (~0.4 MB for
# Claude Code's 24 tools), so the bound is also a memory bound.
TOOLS_CACHE_ENTRIES = 32
# Larger tools arrays are parsed per request, not kept.
TOOLS_CACHE_MAX_BYTES = 1 << 20

_TOP = msgspec.json.Decoder(dict[str, msgspec.Raw])

T = TypeVar("T")


class BodyError(ValueError):
    """The body is not a JSON object; the message says why."""


class SharedTools(list[Any]):
    """A request's ``tools``, shared by every request of the same scope that sent the same bytes: read-only.

    Mutating methods raise, so a change meant for one request cannot leak into another; copy it (``list(tools)``)
    to change it. The tool dicts inside are shared too and must not be changed either (no code path does).
    ``memo`` holds what adapters derive from these tools (a translation, a name map), keyed by the adapter's own
    key; its values must depend on the tools and that key only."""

    __slots__ = ("memo",)

    def __init__(self, tools: list[Any]) -> None:
        super().__init__(tools)
        self.memo: dict[Hashable, Any] = {}

    def derive(self, key: Hashable, make: Callable[[], T]) -> T:
        """``memo[key]``, made with ``make()`` the first time it is asked for (an error is not kept)."""
        if key not in self.memo:
            self.memo[key] = make()
        return cast(T, self.memo[key])

    def __reduce__(self) -> tuple[type[list[Any]], tuple[list[Any]]]:
        return (list, (list(self),))  # a copy (copy, deepcopy, pickle) is a plain, changeable list

    def _read_only(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("a request's shared tools are read-only; copy them (list(tools)) to change them")

    append = extend = insert = remove = pop = clear = sort = reverse = _read_only  # type: ignore[assignment]
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _read_only  # type: ignore[assignment]


class _ToolsKey:
    """A scope and a tools array's bytes, hashed by their length, first and last bytes only: hashing all ~63 KB of
    Claude Code's tools (SipHash) cost ~14 us a request, comparing them with an entry's (memcmp) ~1 us. Arrays that
    differ only in the middle share a hash and are told apart by comparing; the cache holds few entries."""

    __slots__ = ("_hash", "data", "scope")

    def __init__(self, scope: Hashable, data: bytes) -> None:
        self.scope = scope
        self.data = data
        self._hash = hash((scope, len(data), data[:_KEY_EDGE], data[-_KEY_EDGE:]))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ToolsKey) and self.data == other.data and self.scope == other.scope


# Bytes of each end of a tools array that go into its key's hash.
_KEY_EDGE = 64


class _ToolsCache:
    def __init__(self, entries: int) -> None:
        self._entries = entries
        self._items: OrderedDict[_ToolsKey, SharedTools] = OrderedDict()
        self._last: dict[Hashable, _ToolsKey] = {}  # per scope, the entry it used last (kept in _items)
        self._lock = threading.Lock()

    def get(self, key: _ToolsKey) -> SharedTools | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                self._last[key.scope] = key
            return found

    def put(self, key: _ToolsKey, tools: SharedTools) -> None:
        with self._lock:
            self._items[key] = tools
            self._items.move_to_end(key)
            self._last[key.scope] = key
            while len(self._items) > self._entries:
                evicted, _ = self._items.popitem(last=False)
                if self._last.get(evicted.scope) is evicted:
                    del self._last[evicted.scope]

    def last(self, scope: Hashable) -> tuple[_ToolsKey, SharedTools] | None:
        """The entry this scope used last, if still kept."""
        with self._lock:
            key = self._last.get(scope)
            return None if key is None else (key, self._items[key])

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._last.clear()


tools_cache = _ToolsCache(TOOLS_CACHE_ENTRIES)


def _loads(raw: msgspec.Raw) -> Any:
    return orjson.loads(memoryview(raw))


def body_parse(raw: bytes, *, scope: Hashable, tools_validate: Callable[[Any], None]) -> dict[str, Any]:
    """The body as ``orjson.loads`` gives it (same keys, same order), except that a list of tools is a
    ``SharedTools``. ``tools_validate`` checks a tools value seen for the first time in this scope and raises
    to reject it (nothing is kept then); the caller validates the other fields itself.

    Raises ``BodyError`` for a body that is not a JSON object."""
    known = tools_cache.last(scope)
    if known is not None:
        body = _with_known_tools(raw, *known)
        if body is not None:
            return body
    try:
        top = _TOP.decode(raw)
    except msgspec.ValidationError:
        raise BodyError("request body must be a JSON object") from None
    except msgspec.DecodeError as exc:
        raise BodyError(f"request body is not valid JSON: {exc}") from None
    try:
        body = {name: _tools(value, scope, tools_validate) if name == "tools" else _loads(value)
                for name, value in top.items()}  # fmt: skip
    except orjson.JSONDecodeError as exc:
        raise BodyError(f"request body is not valid JSON: {exc}") from None
    return body


# What stands in for the tools while the rest of a body is parsed (``_with_known_tools``): a JSON string no client
# can send on purpose, since it is drawn at random per process.
_STAND_IN = "lynkr-tools-" + secrets.token_hex(16)
_STAND_IN_JSON = orjson.dumps(_STAND_IN)
_TOOLS_MEMBER = b'"tools":'
# Occurrences of '"tools":' looked at before giving up (a nested "tools" key in a message comes before the real one).
_TOOLS_MEMBER_TRIES = 8


def _with_known_tools(raw: bytes, key: _ToolsKey, shared: SharedTools) -> dict[str, Any] | None:
    """The body, if its tools are byte for byte the ones this scope sent last (Claude Code's every turn); None to
    parse it the general way. Splitting the top level (``_TOP``) scans all ~63 KB of tools; here they are found by
    their member name and one comparison, and the rest (~14 KB) is parsed with the tools replaced by ``_STAND_IN``:
    ~17 us instead of ~62 us (measured, Claude Code 2.1.197's turn).

    Only the member that ends up as the body's ``tools`` can come back as the stand-in: an occurrence inside a
    message (a nested object's "tools" key; a string cannot hold an unescaped quote) or a duplicate key that loses to
    a later one leaves something else there, and the body is parsed the general way. The rest of the bytes are
    parsed, and so checked, as orjson parses them; the tools' bytes were checked when first seen."""
    data = key.data
    at = raw.find(_TOOLS_MEMBER)
    for _ in range(_TOOLS_MEMBER_TRIES):
        if at < 0:
            return None
        value = at + len(_TOOLS_MEMBER)
        if raw.startswith(data, value):
            try:
                body = orjson.loads(b"".join((raw[:value], _STAND_IN_JSON, raw[value + len(data) :])))
            except orjson.JSONDecodeError:
                return None
            if not isinstance(body, dict) or body.get("tools") != _STAND_IN:
                return None
            body["tools"] = shared  # same key, same place
            tools_cache.get(key)  # used again: most recent
            return body
        at = raw.find(_TOOLS_MEMBER, value)
    return None


def _tools(raw: msgspec.Raw, scope: Hashable, tools_validate: Callable[[Any], None]) -> Any:
    if len(raw) > TOOLS_CACHE_MAX_BYTES:
        tools = _loads(raw)
        tools_validate(tools)
        return tools
    key = _ToolsKey(scope, bytes(raw))
    shared = tools_cache.get(key)
    if shared is not None:
        return shared
    tools = orjson.loads(key.data)
    tools_validate(tools)
    if not isinstance(tools, list):
        return tools  # null: nothing to share
    shared = SharedTools(tools)
    tools_cache.put(key, shared)
    return shared
