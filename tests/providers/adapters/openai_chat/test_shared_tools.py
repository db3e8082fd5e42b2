"""A request's shared tools (gateway/wire/body.py) are translated once (translate.tools_to_chat, the adapter's name
map): the upstream body and the stream decoding are byte for byte what they are for the same body as plain lists."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.wire.body import SharedTools, body_parse, tools_cache
from gateway.wire.errors import InvalidRequestError
from providers.adapters.common.toolnames import toolname_encode
from providers.adapters.openai_chat.adapter import tool_names_reverse
from providers.adapters.openai_chat.translate import build_request
from tests.providers.adapters.openai_chat.helpers import INBOUND, body, provider, route

CLAUDE_CODE = Path(__file__).resolve().parents[3] / "fixtures" / "claude_code"
LONG = "mcp__a_very_long_server_name_for_testing__and_an_even_longer_tool_name_that_overflows"


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    tools_cache.clear()
    yield
    tools_cache.clear()


def shared(request: dict[str, Any]) -> dict[str, Any]:
    parsed = body_parse(orjson.dumps(request), scope=1, tools_validate=lambda tools: None)
    assert isinstance(parsed["tools"], SharedTools)
    return parsed


def upstream(request: dict[str, Any], **changes: Any) -> bytes:
    return build_request(route(provider(**changes)), request, INBOUND).body


def tool_search_turn(revealed_name: str) -> dict[str, Any]:
    spec = {"description": "d", "name": revealed_name, "parameters": {"type": "object"}}
    return body(
        tools=[
            {"name": "ToolSearch", "description": "find tools", "input_schema": {"type": "object"}},
            {"name": LONG, "input_schema": {"type": "object", "$schema": "x", "properties": {"n": {"const": 1}}}},
            {"name": "Deferred", "defer_loading": True, "input_schema": {"type": "object"}},
        ],
        messages=[
            {"role": "user", "content": "find it"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "ToolSearch", "input": {}}]},
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "content": f"<functions><function>{orjson.dumps(spec).decode()}</function></functions>",
                    }
                ],
            },
        ],
    )


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("path", sorted(CLAUDE_CODE.glob("*.json")), ids=lambda p: p.name)
def test_claude_code_turns_translate_byte_for_byte_as_before(path: Path, strict: bool) -> None:
    plain = orjson.loads(path.read_bytes())
    request = shared(plain)
    options = {"strict_schema": strict}
    expected = upstream(plain, options=options)
    assert upstream(request, options=options) == expected  # made and kept
    assert upstream(request, options=options) == expected  # from what was kept
    assert ("openai_chat.tools_to_chat", strict) in request["tools"].memo
    assert tool_names_reverse(request) == tool_names_reverse(plain)


def test_tools_revealed_by_tool_search_follow_the_kept_translation() -> None:
    plain = tool_search_turn(LONG + "_revealed")
    request = shared(plain)
    for _ in range(2):
        assert upstream(request) == upstream(plain)
        assert upstream(request, options={"strict_schema": True}) == upstream(plain, options={"strict_schema": True})
        names = tool_names_reverse(request)
        assert names == tool_names_reverse(plain)
        assert names[toolname_encode(LONG + "_revealed")] == LONG + "_revealed"
    sent = orjson.loads(upstream(request))["tools"]
    assert [t["function"]["name"] for t in sent] == [
        "ToolSearch",
        toolname_encode(LONG),
        toolname_encode(LONG + "_revealed"),
    ]


def test_the_same_tools_with_another_conversation_reveal_only_what_that_conversation_found() -> None:
    found_first, found_second = LONG + "_first", LONG + "_second"
    first, second = shared(tool_search_turn(found_first)), shared(tool_search_turn(found_second))
    assert first["tools"] is second["tools"]  # same tools bytes, same user
    assert orjson.loads(upstream(first))["tools"][-1]["function"]["name"] == toolname_encode(found_first)
    assert orjson.loads(upstream(second))["tools"][-1]["function"]["name"] == toolname_encode(found_second)
    assert set(tool_names_reverse(first).values()) == {LONG, found_first}
    assert set(tool_names_reverse(second).values()) == {LONG, found_second}


def test_only_deferred_tools_declare_nothing() -> None:
    plain = body(tools=[{"name": "Deferred", "defer_loading": True, "input_schema": {"type": "object"}}])
    request = shared(plain)
    assert "tools" not in orjson.loads(upstream(request))
    assert upstream(request) == upstream(plain)


def test_a_server_tool_is_refused_every_time() -> None:
    request = shared(body(tools=[{"type": "web_search_20250305", "name": "web_search"}]))
    for _ in range(2):
        with pytest.raises(InvalidRequestError, match="runs only on Anthropic's API"):
            upstream(request)


def test_a_provider_without_tools_refuses_shared_tools_too() -> None:
    request = shared(body(tools=[{"name": "Read", "input_schema": {"type": "object"}}]))
    upstream(request)  # kept for the provider that takes tools
    with pytest.raises(InvalidRequestError, match="does not support tools"):
        upstream(request, supports_tools=False)
