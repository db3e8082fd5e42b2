"""Reading Anthropic request content for other backends (content.py).

Block shapes: https://docs.anthropic.com/en/api/messages; Claude Code's metadata.user_id, thinking and
output_config: claude-code-wire.md §3; deferred tools and ToolSearch: §8.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pytest

from gateway.wire.body import SharedTools
from gateway.wire.errors import InvalidRequestError
from providers.adapters.common.content import (
    blocks_of,
    effort_of,
    image_base64,
    image_url,
    text_of,
    tool_result_split,
    tools_declared,
    tools_for_backend,
    user_hash,
)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# --- text_of / blocks_of --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "text"),
    [
        ("plain", "plain"),
        ("", ""),
        (None, ""),
        ([], ""),
        (
            [{"type": "text", "text": "a"}, {"type": "image"}, "junk", {"type": "text", "text": "b"}, {"type": "text"}],
            "a\n\nb\n\n",
        ),
    ],
)
def test_text_of(content: Any, text: str) -> None:
    assert text_of(content) == text


@pytest.mark.parametrize(
    ("content", "blocks"),
    [
        ("hi", [{"type": "text", "text": "hi"}]),
        ("", []),
        (None, []),
        (
            [{"type": "text", "text": "a"}, "junk", 3, {"type": "image"}],
            [{"type": "text", "text": "a"}, {"type": "image"}],
        ),
    ],
)
def test_blocks_of(content: Any, blocks: list[Any]) -> None:
    assert blocks_of(content) == blocks


# --- images ---------------------------------------------------------------------------------------------------


def test_image_url_forms() -> None:
    assert (
        image_url({"source": {"type": "base64", "media_type": "image/webp", "data": "UklG"}}, "w")
        == "data:image/webp;base64,UklG"
    )
    assert image_url({"source": {"type": "base64"}}, "w") == "data:image/png;base64,"
    assert image_url({"source": {"type": "url", "url": "https://x/y.png"}}, "w") == "https://x/y.png"


@pytest.mark.parametrize("block", [{"source": {"type": "file", "file_id": "file_1"}}, {}, {"source": None}])
def test_image_url_refuses_other_sources(block: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequestError) as info:
        image_url(block, "messages.0.content.2")
    assert info.value.message.startswith("messages.0.content.2: image source type ")
    assert info.value.message.endswith(" cannot be sent to this provider")


def test_image_base64() -> None:
    assert image_base64({"source": {"type": "base64", "data": "QUJD"}}, "w") == "QUJD"
    with pytest.raises(InvalidRequestError) as info:
        image_base64({"source": {"type": "url", "url": "https://x"}}, "messages.1.content.0")
    assert info.value.message == "messages.1.content.0: only base64 images can be sent to this provider (got 'url')"
    with pytest.raises(InvalidRequestError, match=r"\(got None\)"):
        image_base64({}, "w")


# --- tool_result_split ----------------------------------------------------------------------------------------

IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "QQ=="}}


@pytest.mark.parametrize(
    ("block", "text", "images"),
    [
        ({"content": "File created"}, "File created", []),
        ({"content": [{"type": "text", "text": "a"}, IMAGE, {"type": "text", "text": "b"}]}, "a\n\nb", [IMAGE]),
        ({}, "", []),
        ({"content": "denied", "is_error": True}, "[tool error] denied", []),
        ({"content": [], "is_error": True}, "[tool error]", []),
        ({"content": [IMAGE], "is_error": False}, "", [IMAGE]),
    ],
)
def test_tool_result_split(block: dict[str, Any], text: str, images: list[Any]) -> None:
    assert tool_result_split({"type": "tool_result", "tool_use_id": "t", **block}, "w") == (text, images)


@pytest.mark.parametrize("kind", ["document", "tool_reference", "search_result"])
def test_tool_result_with_other_blocks_is_a_400(kind: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        tool_result_split({"content": [{"type": "text", "text": "x"}, {"type": kind}]}, "messages.4.content.0")
    assert (
        info.value.message == f"messages.4.content.0.content.1: block type {kind!r} in a tool_result is not supported"
    )


# --- tools_for_backend ----------------------------------------------------------------------------------------

TOOL_SEARCH = {"name": "ToolSearch", "input_schema": {"type": "object"}}


def _result(text: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": text}]}]


def test_deferred_tools_are_left_out() -> None:
    tools = [{"name": "Read"}, {"name": "Later", "defer_loading": True}, {"name": "Now", "defer_loading": False}]
    assert tools_for_backend(tools, []) == [{"name": "Read"}, {"name": "Now", "defer_loading": False}]
    assert tools_for_backend(None, []) == []


def test_tool_search_results_declare_the_revealed_tools_once() -> None:
    spec = {"description": "Edit cells", "name": "NotebookEdit", "parameters": {"type": "object", "properties": {}}}
    line = f"<function>{orjson.dumps(spec).decode()}</function>"
    messages = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "text", "text": line}]},  # not a tool_result: ignored
        *_result(f"<functions>\n{line}\n{line}\n</functions>"),
        *_result([{"type": "text", "text": '<function>{"name": "Bare"}</function>'}]),
        *_result(
            '<function>{"name": "ToolSearch", "parameters": {}}</function>'
            '<function>{broken}</function><function>{"name": 7}</function>'
        ),
    ]
    assert tools_for_backend([TOOL_SEARCH, {"name": "NotebookEdit", "defer_loading": True}], messages) == [
        TOOL_SEARCH,
        {
            "name": "NotebookEdit",
            "description": "Edit cells",
            "input_schema": {"type": "object", "properties": {}},
        },
        {"name": "Bare", "description": "", "input_schema": None},
    ]


def test_the_declared_part_of_shared_tools_is_made_once() -> None:
    tools = SharedTools([TOOL_SEARCH, {"name": "Later", "defer_loading": True}, {"name": "Read"}])
    declared = tools_declared(tools)
    assert declared == [TOOL_SEARCH, {"name": "Read"}]
    assert tools_declared(tools) is declared
    assert tools_declared(list(tools)) == declared and tools_declared(list(tools)) is not declared
    line = '<function>{"name": "Found", "parameters": {}}</function>'
    with_revealed = tools_for_backend(tools, _result(line))
    assert [t["name"] for t in with_revealed] == ["ToolSearch", "Read", "Found"]
    assert tools_declared(tools) == [TOOL_SEARCH, {"name": "Read"}]  # the kept list is not extended


def test_a_deferred_tool_search_reveals_nothing() -> None:
    line = '<function>{"name": "X", "parameters": {}}</function>'
    assert tools_for_backend([{**TOOL_SEARCH, "defer_loading": True}], _result(line)) == []
    assert tools_for_backend([], _result(line)) == []


def test_tool_result_without_content_is_skipped() -> None:
    assert tools_for_backend(
        [TOOL_SEARCH], [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}]}]
    ) == [TOOL_SEARCH]


# --- effort_of ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "effort"),
    [
        ({}, None),
        ({"thinking": None}, None),
        ({"thinking": "enabled"}, None),
        ({"thinking": {"type": "disabled"}}, None),
        ({"thinking": {"type": "disabled"}, "output_config": {"effort": "high"}}, None),
        ({"thinking": {"type": "adaptive"}}, "medium"),
        ({"thinking": {"type": "adaptive", "display": "omitted"}, "output_config": {"effort": "medium"}}, "medium"),
        ({"thinking": {"type": "adaptive"}, "output_config": {"effort": "high"}}, "high"),
        ({"thinking": {"type": "adaptive"}, "output_config": {"effort": "low"}}, "low"),
        ({"output_config": {"effort": "max"}}, "high"),
        ({"output_config": {"effort": "xhigh"}}, "high"),
        ({"output_config": {"effort": "minimal"}}, "low"),
        ({"output_config": {"effort": ""}, "thinking": {"type": "adaptive"}}, "medium"),
        ({"output_config": {"effort": 3}, "thinking": {"type": "enabled", "budget_tokens": 2000}}, "low"),
        ({"output_config": None}, None),
        ({"thinking": {"type": "enabled"}}, "low"),
        ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "low"),
        ({"thinking": {"type": "enabled", "budget_tokens": 4095}}, "low"),
        ({"thinking": {"type": "enabled", "budget_tokens": 4096}}, "medium"),
        ({"thinking": {"type": "enabled", "budget_tokens": 16383}}, "medium"),
        ({"thinking": {"type": "enabled", "budget_tokens": 16384}}, "high"),
        ({"thinking": {"type": "enabled", "budget_tokens": 31999}}, "high"),
        ({"thinking": {"type": "something-new"}}, None),
    ],
)
def test_effort_of(body: dict[str, Any], effort: str | None) -> None:
    assert effort_of(body) == effort


# --- user_hash ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_id", "expected"),
    [
        (
            '{"device_id":"8fdc85","account_uuid":"","session_id":"14b17683-0821"}',
            (sha("8fdc85"), sha("14b17683-0821")),
        ),
        ('{"device_id":"","account_uuid":"acc-1","session_id":""}', (sha("acc-1"), None)),
        ('{"device_id":"","account_uuid":""}', (sha('{"device_id":"","account_uuid":""}'), None)),
        ('["not", "an", "object"]', (sha('["not", "an", "object"]'), None)),
        ("alice@example.com", (sha("alice@example.com"), None)),
        ("", (None, None)),
        (None, (None, None)),
        (42, (None, None)),
    ],
)
def test_user_hash(user_id: Any, expected: tuple[str | None, str | None]) -> None:
    assert user_hash({"metadata": {"user_id": user_id}}) == expected


def test_user_hash_without_metadata() -> None:
    assert user_hash({}) == (None, None)
    assert user_hash({"metadata": None}) == (None, None)
    user, session = user_hash({"metadata": {"user_id": '{"device_id":"d","session_id":"s"}'}})
    assert user is not None and session is not None
    assert len(user) == len(session) == 32 and user != "d"
