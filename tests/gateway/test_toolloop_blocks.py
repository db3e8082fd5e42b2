"""The pure pieces of the tool loop: tool lists, tool_use / tool_result blocks, progress lines, answer events."""

from __future__ import annotations

import orjson

from gateway.sse import Accumulator
from gateway.toolloop_blocks import (
    answer_events,
    progress_events,
    progress_line,
    start_event,
    stopped_note,
    tool_result_block,
    tool_uses,
    tools_merge,
    truncate_utf8,
    without_gateway_uses,
)

OURS = [{"name": "fs_read", "input_schema": {}}, {"name": "Bash", "input_schema": {}}, {"name": "git_status"}]


def test_merge_keeps_the_clients_tools_first_and_a_clients_name_wins() -> None:
    client = [{"name": "Bash", "description": "client bash"}]
    merged, names = tools_merge(client, OURS)
    assert [t["name"] for t in merged] == ["Bash", "fs_read", "git_status"]
    assert merged[0] == {"name": "Bash", "description": "client bash"}
    assert names == {"fs_read", "git_status"}


def test_merge_without_client_tools() -> None:
    merged, names = tools_merge(None, OURS[:1])
    assert merged == OURS[:1] and names == {"fs_read"}


def test_tool_uses_split_by_owner_in_order() -> None:
    content = [
        {"type": "text", "text": "x"},
        {"type": "tool_use", "id": "1", "name": "fs_read", "input": {}},
        {"type": "tool_use", "id": "2", "name": "Bash", "input": {}},
        {"type": "server_tool_use", "id": "3", "name": "fs_read", "input": {}},
    ]
    gateway, client = tool_uses(content, frozenset({"fs_read"}))
    assert [b["id"] for b in gateway] == ["1"] and [b["id"] for b in client] == ["2"]
    assert [b.get("id") for b in without_gateway_uses(content, frozenset({"fs_read"}))] == [None, "2", "3"]


def test_truncation_never_splits_a_character() -> None:
    assert truncate_utf8("héllo", 100) == ("héllo", False)
    cut, was_cut = truncate_utf8("éé", 3)  # 4 bytes; the second é would be split
    assert (cut, was_cut) == ("é", True)


def test_tool_result_is_cut_and_says_so() -> None:
    block = tool_result_block("toolu_1", text="x" * 50, is_error=False, max_bytes=10)
    assert block["tool_use_id"] == "toolu_1" and "is_error" not in block
    assert block["content"].startswith("x" * 10 + "\n[truncated by the gateway at 10 of 50 bytes]")
    error = tool_result_block("toolu_2", text="boom", is_error=True, max_bytes=10)
    assert error == {"type": "tool_result", "tool_use_id": "toolu_2", "content": "boom", "is_error": True}


def test_progress_line_shapes() -> None:
    assert (
        progress_line("workspace_symbol_search", {"query": "helper"}, result={"symbols": [1, 2, 3]}, error="")
        == '⏺ workspace_symbol_search(query="helper") → 3 results\n'
    )
    assert progress_line("x", {}, result={"items": [1], "truncated": True}, error="") == "⏺ x() → 1 result, truncated\n"
    assert progress_line("fs_read", {"path": "a"}, result={"content": "abc"}, error="") == (
        f'⏺ fs_read(path="a") → ok ({len(orjson.dumps({"content": "abc"}))} bytes)\n'
    )
    line = progress_line("fs_read", {"path": "p" * 500}, result=None, error="'p' cannot be read\nmore")
    assert line.endswith("→ error: 'p' cannot be read\n") and len(line) < 250 and "…" in line


def test_stopped_note_names_the_reason() -> None:
    limit = stopped_note(["b", "a", "a"], limit=True, stop_reason="tool_use", policy="p", max_steps=2, max_tool_calls=3)
    assert limit["text"] == (
        "[lynkr: this request reached its gateway tool limit (policy 'p': max_steps=2, max_tool_calls=3); "
        "not run: a, b]"
    )
    cut = stopped_note(["a"], limit=False, stop_reason="max_tokens", policy="p", max_steps=2, max_tool_calls=3)
    assert "stopped (max_tokens)" in cut["text"]


def test_answer_events_fold_back_to_the_message_after_the_progress_block() -> None:
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [
            {"type": "text", "text": "⏺ a() → ok\n"},
            {"type": "text", "text": "answer"},
            {"type": "tool_use", "id": "t", "name": "Bash", "input": {"command": "ls"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 3, "cache_read_input_tokens": 4},
    }
    accumulator = Accumulator()
    events = [start_event("msg_1", "m", 99), *progress_events("⏺ a() → ok\n", started=False)]
    events.append({"type": "content_block_stop", "index": 0})
    events += answer_events(message, skip=1)
    for event in events:
        accumulator.feed(event)
    assert accumulator.result() == message
    assert [e.get("index") for e in events if e["type"] == "content_block_start"] == [0, 1, 2]
    assert events[-1] == {"type": "message_stop"}


def test_progress_events_start_the_block_once() -> None:
    assert [e["type"] for e in progress_events("a\n", started=False)] == ["content_block_start", "content_block_delta"]
    assert [e["type"] for e in progress_events("b\n", started=True)] == ["content_block_delta"]
