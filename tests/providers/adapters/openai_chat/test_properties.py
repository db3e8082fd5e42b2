"""Property tests (hypothesis): any valid Anthropic conversation translates, tool ids round-trip, and any
re-chunking of a recorded upstream stream decodes to the same events."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from providers.adapters.openai_chat.translate import build_request
from tests.providers.adapters.openai_chat.helpers import (
    INBOUND,
    Json,
    chunk,
    content_type_of,
    decode,
    fixture,
    fold,
    provider,
    route,
    sse,
    tool_delta,
)
from tests.providers.adapters.openai_chat.test_golden import GOLDEN

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
OPENAI_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")

# Tool names: ordinary, MCP-style long ones (over 64), and ones with characters OpenAI refuses.
NAMES = st.one_of(
    st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,20}", fullmatch=True),
    st.from_regex(r"mcp__[a-z0-9-]{1,30}__[a-z_]{40,80}", fullmatch=True),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=30),
)
TEXT = st.text(max_size=40)
IDS = st.one_of(st.from_regex(r"toolu_[A-Za-z0-9]{8,24}", fullmatch=True), st.text(min_size=1, max_size=30))
IMAGE = st.sampled_from(
    [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
    ]
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def requests(draw: st.DrawFn) -> Json:
    tool_names = draw(st.lists(NAMES, min_size=0, max_size=5, unique=True))
    tools = [
        {"name": name, "description": draw(TEXT), "input_schema": {"type": "object", "properties": {}}}
        for name in tool_names
    ]
    turns = draw(st.integers(min_value=1, max_value=4))
    ids = iter(draw(st.lists(IDS, min_size=turns * 3, max_size=turns * 3, unique=True)))
    thinking = draw(st.booleans())
    messages: list[Json] = [
        {
            "role": "user",
            "content": draw(
                st.one_of(
                    TEXT.filter(bool),
                    st.lists(
                        st.one_of(st.builds(lambda t: {"type": "text", "text": t}, TEXT), IMAGE), min_size=1, max_size=3
                    ),
                )
            ),
        }
    ]
    for _ in range(turns):
        assistant: list[Json] = []
        if thinking and draw(st.booleans()):
            assistant.append({"type": "thinking", "thinking": draw(TEXT), "signature": draw(TEXT)})
        if draw(st.booleans()):
            assistant.append({"type": "text", "text": draw(TEXT)})
        calls = []
        for _ in range(draw(st.integers(min_value=0, max_value=3 if tool_names else 0))):
            call = {
                "type": "tool_use",
                "id": next(ids),
                "name": draw(st.sampled_from(tool_names)),
                "input": draw(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=3)),
            }
            calls.append(call)
        assistant += calls
        if not assistant:
            assistant.append({"type": "text", "text": "ok"})
        messages.append({"role": "assistant", "content": assistant})
        user: list[Json] = []
        for call in calls:
            content = draw(
                st.one_of(
                    TEXT, st.lists(st.one_of(st.builds(lambda t: {"type": "text", "text": t}, TEXT), IMAGE), max_size=3)
                )
            )
            result: Json = {"type": "tool_result", "tool_use_id": call["id"], "content": content}
            if draw(st.booleans()):
                result["is_error"] = draw(st.booleans())
            user.append(result)
        user += draw(
            st.lists(st.one_of(st.builds(lambda t: {"type": "text", "text": t}, TEXT.filter(bool)), IMAGE), max_size=2)
        )
        if not user:
            user.append({"type": "text", "text": "go on"})
        messages.append({"role": "user", "content": user})
    out: Json = {"model": "claude-opus-4-8", "max_tokens": draw(st.integers(1, 200000)), "messages": messages}
    if tools:
        out["tools"] = tools
    if draw(st.booleans()):
        out["system"] = draw(
            st.one_of(TEXT, st.lists(st.builds(lambda t: {"type": "text", "text": t}, TEXT), max_size=3))
        )
    if thinking:
        out["thinking"] = draw(
            st.sampled_from([{"type": "adaptive"}, {"type": "enabled", "budget_tokens": 2048}, {"type": "disabled"}])
        )
    return out


@SETTINGS
@given(requests(), st.booleans(), st.booleans())
def test_any_valid_request_translates_and_tool_ids_round_trip(request: Json, strict: bool, echo: bool) -> None:
    config = provider(supports_thinking=True, options={"strict_schema": strict, "reasoning_echo": echo})
    sent = orjson.loads(build_request(route(config), request, INBOUND).body)
    tool_uses = [
        b for m in request["messages"] if m["role"] == "assistant" for b in m["content"] if b["type"] == "tool_use"
    ]
    calls = [c for m in sent["messages"] if m["role"] == "assistant" for c in m.get("tool_calls", [])]
    results = [m for m in sent["messages"] if m["role"] == "tool"]
    # Every tool_use id is exactly one tool_calls id and exactly one tool message's tool_call_id ...
    assert Counter(c["id"] for c in calls) == Counter(b["id"] for b in tool_uses)
    assert Counter(m["tool_call_id"] for m in results) == Counter(b["id"] for b in tool_uses)
    # ... and each tool message comes after the assistant message that made the call.
    seen: set[str] = set()
    for message in sent["messages"]:
        seen |= {c["id"] for c in message.get("tool_calls", [])}
        if message["role"] == "tool":
            assert message["tool_call_id"] in seen
    # Names the upstream accepts, declared for every call, and restored in the stream.
    declared = {t["function"]["name"] for t in sent.get("tools", [])}
    assert all(OPENAI_NAME.match(name) for name in declared)
    assert {c["function"]["name"] for c in calls} <= declared
    assert [orjson.loads(c["function"]["arguments"]) for c in calls] == [b["input"] for b in tool_uses]
    if tool_uses:
        stream = sse(
            *[
                chunk(tool_delta(i, c["function"]["arguments"], call_id=c["id"], name=c["function"]["name"]))
                for i, c in enumerate(calls)
            ],
            chunk(finish="tool_calls"),
        )
        folded = fold(decode([stream], request))
        assert [(b["id"], b["name"], b["input"]) for b in folded["content"]] == [
            (b["id"], b["name"], b["input"]) for b in tool_uses
        ]


def _cuts(data: bytes) -> st.SearchStrategy[list[bytes]]:
    def split(points: list[int]) -> list[bytes]:
        edges = [0, *sorted(set(points)), len(data)]
        return [data[a:b] for a, b in itertools.pairwise(edges)]

    return st.lists(st.integers(min_value=0, max_value=len(data)), max_size=60).map(split)


def _check_rechunking(name: str, data: st.DataObject) -> None:
    raw = fixture(name)
    request, expected, _ = GOLDEN[name]
    chunks = data.draw(_cuts(raw))
    assert b"".join(chunks) == raw
    assert decode(chunks, request, content_type_of(name)) == expected


@SETTINGS
@given(st.sampled_from(sorted(GOLDEN)), st.data())
def test_any_rechunking_of_a_recorded_stream_gives_the_same_events(name: str, data: st.DataObject) -> None:
    _check_rechunking(name, data)


@SETTINGS
@given(st.data())
def test_any_rechunking_of_the_parallel_tool_stream(data: st.DataObject) -> None:
    _check_rechunking("openai_parallel_tools.sse", data)


@SETTINGS
@given(st.data())
def test_any_rechunking_of_the_reasoning_stream(data: st.DataObject) -> None:
    _check_rechunking("openrouter_reasoning.sse", data)


def test_strategies_cover_long_and_odd_names() -> None:
    # A guard that the request strategy really produces the names the property is about.
    examples: list[Any] = []

    @settings(max_examples=300, deadline=None, database=None)
    @given(NAMES)
    def collect(name: str) -> None:
        examples.append(name)

    collect()
    assert any(len(n) > 64 for n in examples)
    assert any(not OPENAI_NAME.match(n) and len(n) <= 64 for n in examples)
