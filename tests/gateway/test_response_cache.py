"""gateway.response_cache: the exact-match key, the caching policy, the in-process and Redis stores, and the replay
of a hit (checked with the official anthropic SDK reading the replayed stream)."""

from __future__ import annotations

import asyncio
import copy
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx2 as httpx  # the anthropic SDK 2.x runs on httpx2 and refuses httpx objects
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import response_cache as rc
from gateway.response_cache import (
    LocalResponseCache,
    RedisResponseCache,
    cache_key,
    cacheable,
    cacheable_result,
    replay_events,
    response_cache,
)
from gateway.sse import Accumulator, encode
from tests.services import free_port, require_redis

REDIS_DB = 12  # keys carry a unique prefix and are deleted afterwards, so sharing the db is harmless

BODY: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Name a prime.", "cache_control": {"type": "ephemeral"}}]}
    ],
    "tools": [{"name": "lookup", "description": "d", "input_schema": {"type": "object"}}],
    "tool_choice": {"type": "auto"},
    "temperature": 0.0,
    "top_p": 0.9,
    "top_k": 40,
    "stop_sequences": ["END"],
    "max_tokens": 256,
    "thinking": {"type": "disabled"},
    "output_config": {"effort": "low"},
    "stream": True,
    "metadata": {"user_id": "u1"},
    "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
}
ROUTE = {"provider": "openrouter", "upstream_model": "qwen/qwen3-coder"}


def _key(body: dict[str, Any], **route: str) -> str:
    return cache_key(body, **{**ROUTE, **route})


# --- cache_key ------------------------------------------------------------------------------------------------

CHANGES: dict[str, Any] = {
    "model": "claude-haiku-4-5",
    "system": "You are verbose.",
    "messages": [{"role": "user", "content": "Name a composite."}],
    "tools": [],
    "tool_choice": {"type": "any"},
    "temperature": 0.5,
    "top_p": 0.5,
    "top_k": 5,
    "stop_sequences": ["STOP"],
    "max_tokens": 512,
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "output_config": {"effort": "high"},
}


@pytest.mark.parametrize("field", list(CHANGES))
def test_the_key_changes_with_every_field_that_changes_the_answer(field: str) -> None:
    assert _key({**BODY, field: CHANGES[field]}) != _key(BODY)
    removed = {k: v for k, v in BODY.items() if k != field}
    assert _key(removed) != _key(BODY)


@pytest.mark.parametrize("route", [{"provider": "ollama"}, {"upstream_model": "qwen/qwen3-coder-plus"}])
def test_the_key_changes_with_the_routed_provider_and_model(route: dict[str, str]) -> None:
    assert _key(BODY, **route) != _key(BODY)


def test_an_unknown_field_counts_by_default() -> None:
    assert _key({**BODY, "some_future_field": {"x": 1}}) != _key(BODY)


@pytest.mark.parametrize(
    "change",
    [
        {"stream": False},
        {"stream": None},
        {"metadata": {"user_id": "someone-else"}},
        {"context_management": None},
        {"temperature": 0},  # 0 and 0.0 ask for the same thing
        {"service_tier": None},  # null is absent
    ],
    ids=["stream", "stream-absent", "metadata", "context_management", "int-temperature", "null-field"],
)
def test_the_key_ignores_what_does_not_change_the_answer(change: dict[str, Any]) -> None:
    assert _key({**BODY, **change}) == _key(BODY)
    assert _key({k: v for k, v in BODY.items() if k not in ("stream", "metadata", "context_management")}) == _key(BODY)


def test_the_key_ignores_cache_control_markers_at_any_depth() -> None:
    plain = copy.deepcopy(BODY)
    plain["system"] = [{"type": "text", "text": "You are terse."}]
    plain["messages"] = [{"role": "user", "content": [{"type": "text", "text": "Name a prime."}]}]
    marked = copy.deepcopy(plain)
    marked["tools"][0]["cache_control"] = {"type": "ephemeral", "ttl": "1h"}
    marked["messages"][0]["content"][0]["cache_control"] = {"type": "ephemeral"}
    nested = {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "7"}]}
    plain["messages"].append({"role": "user", "content": [nested]})
    marked["messages"].append(
        {"role": "user", "content": [{**nested, "content": [{"type": "text", "text": "7", "cache_control": {}}]}]}
    )
    assert _key(marked) == _key(plain)
    assert _key(BODY) == _key({**plain, "messages": plain["messages"][:1]})


def test_the_key_survives_odd_shapes_and_strips_every_marker_in_a_list() -> None:
    two = [
        {"type": "text", "text": "a", "cache_control": {}},
        "odd",
        {"type": "text", "text": "b", "cache_control": {}},
    ]
    plain = [{"type": "text", "text": "a"}, "odd", {"type": "text", "text": "b"}]
    marked_body = {**BODY, "system": two, "messages": [*BODY["messages"], "odd", {"role": "user", "content": two}]}
    plain_body = {**BODY, "system": plain, "messages": [*BODY["messages"], "odd", {"role": "user", "content": plain}]}
    assert _key(marked_body) == _key(plain_body)
    assert _key({**BODY, "messages": "not a list", "cache_control": {"type": "ephemeral"}}) == _key(
        {**BODY, "messages": "not a list"}
    )


def test_a_cache_control_argument_inside_tool_input_is_data_not_a_marker() -> None:
    def body(tool_input: dict[str, Any]) -> dict[str, Any]:
        block = {"type": "tool_use", "id": "t1", "name": "lookup", "input": tool_input}
        return {**BODY, "messages": [*BODY["messages"], {"role": "assistant", "content": [block]}]}

    assert _key(body({"cache_control": "no-store"})) != _key(body({}))


def test_the_key_ignores_dict_key_order_and_does_not_change_the_body() -> None:
    original = copy.deepcopy(BODY)
    reordered = {k: BODY[k] for k in reversed(list(BODY))}
    reordered["system"] = [dict(reversed(list(block.items()))) for block in BODY["system"]]
    assert _key(reordered) == _key(BODY)
    assert original == BODY
    assert len(_key(BODY)) == 64 and int(_key(BODY), 16) >= 0


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


def _shuffled(value: Any, rnd: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        return {k: _shuffled(v, rnd) for k, v in items}
    if isinstance(value, list):
        return [_shuffled(v, rnd) for v in value]  # list order is meaning: keep it
    return value


@settings(max_examples=100, deadline=None)
@given(body=st.dictionaries(st.text(max_size=12), JSON, max_size=8), rnd=st.randoms(use_true_random=False))
def test_property_the_key_is_stable_under_key_reordering(body: dict[str, Any], rnd: random.Random) -> None:
    assert _key(_shuffled(body, rnd)) == _key(body)


# --- policy ---------------------------------------------------------------------------------------------------

USER: Any = {"role": "user", "content": "hi"}
PLAIN = {"model": "m", "max_tokens": 10, "messages": [USER]}


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, True),
        ({"tools": []}, True),
        ({"tools": None}, True),
        ({"tools": [{"name": "t", "input_schema": {}}]}, False),
        ({"mcp_servers": [{"type": "url", "url": "https://x", "name": "x"}]}, False),
        ({"thinking": {"type": "disabled"}}, True),
        ({"thinking": None}, True),
        ({"thinking": {"type": "enabled", "budget_tokens": 2048}}, False),
        ({"thinking": {"type": "adaptive"}}, False),
        ({"temperature": 0}, True),
        ({"temperature": 0.0}, True),
        ({"temperature": 0.7}, False),
        ({"temperature": 1}, False),
        ({"stream": True, "metadata": {"user_id": "u"}}, True),
    ],
)
def test_the_default_policy(extra: dict[str, Any], expected: bool) -> None:
    assert cacheable({**PLAIN, **extra}) is expected


def test_tools_can_be_allowed_but_thinking_and_variety_still_are_not() -> None:
    tools = {"tools": [{"name": "t", "input_schema": {}}]}
    assert cacheable({**PLAIN, **tools}, allow_tools=True)
    assert not cacheable({**PLAIN, **tools, "thinking": {"type": "adaptive"}}, allow_tools=True)
    assert not cacheable({**PLAIN, **tools, "temperature": 0.3}, allow_tools=True)


def _answer(text: str = "Seven.", *, stop_reason: str = "end_turn") -> list[dict[str, Any]]:
    return [
        {
            "type": "message_start",
            "message": {
                "id": "msg_upstream",
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": "qwen/qwen3-coder",
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 12,
                    "output_tokens": 1,
                    "cache_read_input_tokens": 100,
                    "cache_creation_input_tokens": 30,
                    "cache_creation": {"ephemeral_5m_input_tokens": 30, "ephemeral_1h_input_tokens": 0},
                },
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text[:3]}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text[3:]}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": 4, "cache_read_input_tokens": 100},
        },
        {"type": "message_stop"},
    ]


@pytest.mark.parametrize("stop_reason", ["end_turn", "stop_sequence", "max_tokens"])
def test_complete_answers_are_cacheable(stop_reason: str) -> None:
    assert cacheable_result(_answer(stop_reason=stop_reason))
    assert cacheable_result([*_answer(stop_reason=stop_reason), {"type": "ping"}])


@pytest.mark.parametrize("stop_reason", ["tool_use", "pause_turn", "refusal", None])
def test_answers_that_are_not_final_are_not_cacheable(stop_reason: str | None) -> None:
    events = _answer()
    events[-2] = {**events[-2], "delta": {"stop_reason": stop_reason}}
    assert not cacheable_result(events)


def test_broken_or_empty_answers_are_not_cacheable() -> None:
    events = _answer()
    assert not cacheable_result([])
    assert not cacheable_result(events[:-1])  # no message_stop: the stream was cut
    assert not cacheable_result(events[1:])  # no message_start
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert not cacheable_result([*events[:-1], error, events[-1]])
    assert not cacheable_result([events[0], events[-2], events[-1]])  # no content at all
    assert not cacheable_result([{"type": "ping"}])


# --- LocalResponseCache ---------------------------------------------------------------------------------------


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_local_cache_evicts_the_least_recently_used() -> None:
    cache = LocalResponseCache(max_entries=3, ttl=60, clock=FakeClock())
    for name in "abc":
        await cache.put(name, _answer(name * 4))
    assert await cache.get("a") is not None  # a is now the most recent: b is the oldest
    await cache.put("d", _answer("dddd"))
    assert await cache.get("b") is None
    assert len(cache) == 3
    await cache.put("e", _answer("eeee"))  # c goes next, then a
    assert await cache.get("c") is None
    assert [await cache.get(k) is not None for k in "ade"] == [True, True, True]
    await cache.put("a", _answer("AAAA"))  # replacing refreshes, never grows
    assert len(cache) == 3
    got = await cache.get("a")
    assert got is not None and got[3]["delta"]["text"] == "AAA"


async def test_local_cache_entries_expire_after_the_ttl_counted_from_put() -> None:
    clock = FakeClock()
    cache = LocalResponseCache(max_entries=8, ttl=300, clock=clock)
    await cache.put("k", _answer())
    clock.now += 299.9
    assert await cache.get("k") == _answer()  # a hit refreshes recency, not the expiry
    clock.now += 0.1
    assert await cache.get("k") is None
    assert len(cache) == 0
    assert await cache.get("never") is None


async def test_local_cache_returns_copies_and_stores_nothing_when_sized_zero() -> None:
    cache = LocalResponseCache(max_entries=2, ttl=60, clock=FakeClock())
    events = _answer()
    await cache.put("k", events)
    events[0]["message"]["id"] = "mutated after put"
    first = await cache.get("k")
    assert first is not None and first[0]["message"]["id"] == "msg_upstream"
    first[0]["message"]["id"] = "mutated after get"
    again = await cache.get("k")
    assert again is not None and again[0]["message"]["id"] == "msg_upstream"
    for empty in (LocalResponseCache(max_entries=0, ttl=60), LocalResponseCache(max_entries=5, ttl=0)):
        await empty.put("k", _answer())
        assert len(empty) == 0


# --- RedisResponseCache ---------------------------------------------------------------------------------------


@pytest.fixture
def redis_url() -> str:
    return f"{require_redis()}/{REDIS_DB}"


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    import redis

    value = f"lynkr-test:rc:{uuid.uuid4().hex}:"
    yield value
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{value}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
async def raw_redis(redis_url: str) -> AsyncIterator[Any]:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_redis_round_trip_with_ttl(redis_url: str, prefix: str, raw_redis: Any) -> None:
    cache = RedisResponseCache(redis_url, ttl=300, prefix=prefix)
    try:
        key = _key(BODY)
        assert await cache.get(key) is None
        await cache.put(key, _answer())
        assert await cache.get(key) == _answer()
        stored = await raw_redis.get(prefix + key)
        assert stored[:1] == b"j" and orjson.loads(stored[1:]) == _answer()  # small: not compressed
        assert 299_000 < await raw_redis.pttl(prefix + key) <= 300_000
        other = RedisResponseCache(redis_url, ttl=300, prefix=prefix)  # another process sees it
        assert await other.get(key) == _answer()
        await other.aclose()
    finally:
        await cache.aclose()


async def test_redis_compresses_a_large_answer(redis_url: str, prefix: str, raw_redis: Any) -> None:
    cache = RedisResponseCache(redis_url, ttl=60, prefix=prefix)
    try:
        events = _answer("The quick brown fox jumps over the lazy dog. " * 2000)
        await cache.put("big", events)
        stored = await raw_redis.get(prefix + "big")
        assert stored[:1] == b"z"
        assert len(stored) * 10 < len(orjson.dumps(events))
        assert await cache.get("big") == events
    finally:
        await cache.aclose()


async def test_redis_entries_expire(redis_url: str, prefix: str) -> None:
    cache = RedisResponseCache(redis_url, ttl=0.05, prefix=prefix)
    try:
        await cache.put("short", _answer())
        assert await cache.get("short") is not None
        await asyncio.sleep(0.2)
        assert await cache.get("short") is None
    finally:
        await cache.aclose()


async def test_redis_garbage_is_a_miss(redis_url: str, prefix: str, raw_redis: Any) -> None:
    cache = RedisResponseCache(redis_url, ttl=60, prefix=prefix)
    try:
        for raw in (b"xnot ours", b"z\x00\x01", b"j{not json", b'j{"a":1}'):
            await raw_redis.set(prefix + "bad", raw, ex=60)
            assert await cache.get("bad") is None
    finally:
        await cache.aclose()


async def test_an_unreachable_redis_is_a_miss_not_an_error() -> None:
    cache = RedisResponseCache(f"redis://127.0.0.1:{free_port()}/0", ttl=60, timeout=0.5)
    await cache.aclose()  # nothing opened yet: a no-op
    await cache.put("k", _answer())
    assert await cache.get("k") is None
    await cache.aclose()
    await RedisResponseCache(f"redis://127.0.0.1:{free_port()}/0", ttl=0).put("k", _answer())  # ttl 0: no I/O


# --- response_cache() -----------------------------------------------------------------------------------------


@pytest.fixture
def fresh_cache() -> Iterator[None]:
    response_cache.cache_clear()
    yield
    response_cache.cache_clear()


@pytest.mark.usefixtures("fresh_cache")
def test_response_cache_follows_the_settings(settings: Any) -> None:
    settings.REDIS_URL = ""
    settings.LYNKR_PROMPT_CACHE_ENABLED = True
    settings.LYNKR_PROMPT_CACHE_TTL = 120
    settings.LYNKR_PROMPT_CACHE_MAX_ENTRIES = 7
    local = response_cache()
    assert isinstance(local, LocalResponseCache) and (local.ttl, local.max_entries) == (120.0, 7)
    assert response_cache() is local  # one per process

    response_cache.cache_clear()
    settings.REDIS_URL = "redis://127.0.0.1:6379/12"
    shared = response_cache()
    assert isinstance(shared, RedisResponseCache) and shared.prefix == "lynkr:rc:" and shared.ttl == 120.0

    for enabled, ttl in ((False, 120), (True, 0)):
        response_cache.cache_clear()
        settings.LYNKR_PROMPT_CACHE_ENABLED, settings.LYNKR_PROMPT_CACHE_TTL = enabled, ttl
        assert response_cache() is None

    response_cache.cache_clear()
    settings.LYNKR_PROMPT_CACHE_ENABLED, settings.LYNKR_PROMPT_CACHE_TTL = True, 60
    settings.REDIS_URL, settings.LYNKR_PROMPT_CACHE_MAX_ENTRIES = "", 0
    assert response_cache() is None  # an in-process cache of size 0 is off


@pytest.mark.usefixtures("fresh_cache")
def test_response_cache_defaults_when_the_settings_are_absent(settings: Any) -> None:
    for name in ("LYNKR_PROMPT_CACHE_ENABLED", "LYNKR_PROMPT_CACHE_TTL", "LYNKR_PROMPT_CACHE_MAX_ENTRIES"):
        if hasattr(settings, name):
            delattr(settings, name)
    settings.REDIS_URL = None
    cache = response_cache()
    assert isinstance(cache, LocalResponseCache) and (cache.ttl, cache.max_entries) == (300.0, 64)


# --- replay_events --------------------------------------------------------------------------------------------


def _fold(events: list[dict[str, Any]]) -> dict[str, Any]:
    acc = Accumulator()
    for event in events:
        acc.feed(event)
    return acc.result()


def _sdk(handler: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key="sk-test",
        base_url="http://gateway.test",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )


def test_replay_streams_the_same_answer_to_the_anthropic_sdk() -> None:
    recorded = _answer("Seven is prime.")
    before = copy.deepcopy(recorded)
    replay = replay_events(recorded, client_model="claude-sonnet-4-5", message_id="msg_cachehit")
    assert recorded == before  # the stored events are not touched
    assert all(event["type"] != "ping" for event in replay)

    def stream(request: httpx.Request) -> httpx.Response:
        body = b"".join(encode(event) for event in replay)
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    with _sdk(stream) as client, client.messages.stream(model="m", max_tokens=10, messages=[USER]) as sdk_stream:
        message = sdk_stream.get_final_message()
    assert message.content[0].type == "text" and message.content[0].text == "Seven is prime."
    assert message.content[0].text == _fold(recorded)["content"][0]["text"]
    assert (message.id, message.model, message.stop_reason) == ("msg_cachehit", "claude-sonnet-4-5", "end_turn")
    # Honest usage: the prompt's size (12 + 100 read + 30 written upstream) and the answer's, no provider cache.
    assert message.usage.input_tokens == 142 and message.usage.output_tokens == 4
    assert message.usage.cache_read_input_tokens == 0 and message.usage.cache_creation_input_tokens == 0
    assert message.usage.cache_creation is not None
    assert message.usage.cache_creation.ephemeral_5m_input_tokens == 0


def test_replay_folds_into_the_same_json_message() -> None:
    replay = replay_events(_answer("Seven."), client_model="claude-haiku-4-5", message_id="msg_2")
    folded = _fold(replay)
    original = _fold(_answer("Seven."))
    assert folded["content"] == original["content"] == [{"type": "text", "text": "Seven."}]
    assert (folded["id"], folded["model"]) == ("msg_2", "claude-haiku-4-5")
    assert folded["usage"]["input_tokens"] == 142
    assert folded["usage"]["cache_read_input_tokens"] == folded["usage"]["cache_creation_input_tokens"] == 0

    def create(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=orjson.dumps(folded), headers={"content-type": "application/json"})

    with _sdk(create) as client:
        message = client.messages.create(model="m", max_tokens=10, messages=[USER])
    assert message.content[0].type == "text" and message.content[0].text == "Seven."
    assert message.usage.input_tokens == 142 and message.usage.cache_read_input_tokens == 0


def test_replay_without_provider_cache_usage_keeps_the_sizes() -> None:
    events = _answer()
    events[0]["message"]["usage"] = {"input_tokens": 9, "output_tokens": 1}
    events[-2]["usage"] = {"output_tokens": 3, "input_tokens": 9}
    replay = replay_events(events, client_model="m", message_id="msg_3")
    assert replay[0]["message"]["usage"] == {
        "input_tokens": 9,
        "output_tokens": 1,
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0,
    }
    assert replay[-2]["usage"] == {"output_tokens": 3, "input_tokens": 9}


async def test_a_stored_answer_replays_from_the_local_cache() -> None:
    cache = rc.LocalResponseCache(max_entries=4, ttl=60)
    key = _key(PLAIN)
    assert cacheable(PLAIN) and cacheable_result(_answer())
    await cache.put(key, _answer())
    hit = await cache.get(key)
    assert hit is not None
    assert _fold(replay_events(hit, client_model="m", message_id="msg_4"))["content"][0]["text"] == "Seven."
