"""Decoding Responses streams into Anthropic events: the rules the golden fixtures do not reach, on small synthetic
streams built from the documented event shapes (https://platform.openai.com/docs/api-reference/responses-streaming).
"""

from __future__ import annotations

from typing import Any

import pytest

from ._helpers import Json, added, completed, decode, done, fold, sse, without_signatures

# --- synthetic streams for the rules the fixtures do not reach ------------------------------------------------


def _call(item_id: str, call_id: str, name: str = "f", arguments: str = "") -> Json:
    return {"type": "function_call", "id": item_id, "call_id": call_id, "name": name, "arguments": arguments}


def _args(index: int | None, item_id: str | None, delta: str, kind: str = "delta") -> Json:
    event: Json = {"type": f"response.function_call_arguments.{kind}"}
    if index is not None:
        event["output_index"] = index
    if item_id is not None:
        event["item_id"] = item_id
    event["delta" if kind == "delta" else "arguments"] = delta
    return event


def _run(*events: Json, **kwargs: Any) -> Json:
    return without_signatures(fold(decode([sse(*events)], **kwargs)))


def test_parallel_calls_interleaved_by_output_index() -> None:
    message = _run(
        added(0, _call("fc_1", "call_1")),
        added(1, _call("fc_2", "call_2")),
        _args(0, "fc_1", '{"a":'),
        _args(1, "fc_2", '{"b":'),
        _args(0, "fc_1", "1}"),
        _args(1, "fc_2", "2}"),
        completed(),
    )
    assert message["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}},
        {"type": "tool_use", "id": "call_2", "name": "f", "input": {"b": 2}},
    ]
    assert message["stop_reason"] == "tool_use"


def test_argument_deltas_are_relayed_at_once() -> None:
    events = decode([sse(added(0, _call("fc_1", "call_1")), _args(0, "fc_1", '{"a"'))])
    assert events[2] == {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "input_json_delta", "partial_json": '{"a"'},
    }


def test_deltas_without_output_index_are_matched_by_item_id() -> None:
    message = _run(
        added(3, _call("fc_1", "call_1")),
        _args(None, "fc_1", '{"a":1}'),
        _args(None, None, "ignored: no call of this key"),
        _args(7, "fc_unknown", "ignored too"),
        completed(),
    )
    assert message["content"] == [{"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}}]


def test_arguments_sent_only_when_done() -> None:
    only_done = _run(added(0, _call("fc_1", "call_1")), _args(0, "fc_1", '{"a":1}', "done"), completed())
    only_item = _run(
        added(0, _call("fc_1", "call_1")), done(0, _call("fc_1", "call_1", arguments='{"a":1}')), completed()
    )
    rest = _run(
        added(0, _call("fc_1", "call_1")), _args(0, "fc_1", '{"a"'), _args(0, "fc_1", '{"a":1}', "done"), completed()
    )
    call = {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}}
    assert only_done["content"] == only_item["content"] == rest["content"] == [call]


def test_final_arguments_that_disagree_are_not_appended() -> None:
    events = decode(
        [
            sse(
                added(0, _call("fc_1", "call_1")),
                _args(0, "fc_1", '{"a":1}'),
                _args(0, "fc_1", '{"b":2}', "done"),
                _args(0, "fc_1", 42, "done"),  # type: ignore[arg-type]
                done(0, _call("fc_1", "call_1", arguments='{"a":1}')),
                completed(),
            )
        ]
    )
    assert [e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta"] == ['{"a":1}']


def test_a_call_announced_only_when_done_or_named_late() -> None:
    late = _run(done(0, _call("fc_1", "call_1", "g", '{"x":true}')), completed())
    unnamed = _run(
        added(0, _call("fc_1", "call_1", "")),
        _args(0, "fc_1", "lost"),
        done(0, _call("fc_1", "call_1", "g", "{}")),
        completed(),
    )
    no_ids = _run(added(0, {"type": "function_call", "name": "g", "arguments": "{}"}), completed())
    assert late["content"] == [{"type": "tool_use", "id": "call_1", "name": "g", "input": {"x": True}}]
    assert unnamed["content"] == [{"type": "tool_use", "id": "call_1", "name": "g", "input": {}}]
    assert no_ids["content"] == [{"type": "tool_use", "id": "", "name": "g", "input": {}}]


def test_encoded_tool_names_are_decoded() -> None:
    message = _run(
        added(0, _call("fc_1", "call_1", "mcp__x_tool_1a2b3c4d")),
        completed(),
        names={"mcp__x_tool_1a2b3c4d": "mcp__x.tool"},
    )
    assert message["content"][0]["name"] == "mcp__x.tool"


def test_text_sent_only_in_the_done_item_and_no_duplicates() -> None:
    item = {
        "id": "msg_1",
        "type": "message",
        "content": [{"type": "output_text", "text": "Hi"}, "junk", {"type": "other"}],
    }
    assert _run(added(0, item), done(0, item), completed())["content"] == [{"type": "text", "text": "Hi"}]
    streamed = {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0, "delta": "Hi"}
    assert _run(added(0, item), streamed, done(0, item), completed())["content"] == [{"type": "text", "text": "Hi"}]


def test_refusals_are_text_and_end_as_refusal() -> None:
    refusal = {
        "type": "response.refusal.delta",
        "item_id": "msg_1",
        "output_index": 0,
        "delta": "I can't help with that.",
    }
    streamed = _run(refusal, completed())
    item = {"id": "msg_2", "type": "message", "content": [{"type": "refusal", "refusal": "No."}]}
    done_only = _run(done(0, item), completed())
    assert streamed["content"] == [{"type": "text", "text": "I can't help with that."}]
    assert done_only["content"] == [{"type": "text", "text": "No."}]
    assert streamed["stop_reason"] == done_only["stop_reason"] == "refusal"


@pytest.mark.parametrize(
    ("details", "stop_reason"),
    [
        ({"reason": "max_output_tokens"}, "max_tokens"),
        ({"reason": "content_filter"}, "refusal"),
        ({"reason": "new"}, "max_tokens"),
        (None, "max_tokens"),
    ],
)
def test_incomplete_reasons(details: Json | None, stop_reason: str) -> None:
    event = {"type": "response.incomplete", "response": {"status": "incomplete", "incomplete_details": details}}
    assert _run(event)["stop_reason"] == stop_reason
    assert (
        _run({"type": "response.incomplete", "response": {"incomplete_details": details}})["stop_reason"] == stop_reason
    )


@pytest.mark.parametrize("status", ["cancelled", "queued", "in_progress"])
def test_a_response_that_did_not_finish_is_an_error(status: str) -> None:
    events = decode([sse(completed(status))])
    assert events[-1] == {
        "type": "error",
        "error": {"type": "api_error", "message": f"upstream response ended with status {status!r}"},
    }


def test_terminal_events_without_a_response_object() -> None:
    assert _run({"type": "response.completed"})["stop_reason"] == "end_turn"
    assert _run({"type": "response.completed"})["usage"] == {"input_tokens": 1234, "output_tokens": 0}
    events = decode([sse({"type": "response.failed"})])
    assert events[-1]["error"] == {"type": "api_error", "message": "upstream: upstream error"}


def test_error_event_types_are_mapped() -> None:
    events = decode([sse({"type": "error", "code": "rate_limit_exceeded", "message": "Slow down", "param": None})])
    assert events == [
        events[0],
        {"type": "error", "error": {"type": "rate_limit_error", "message": "upstream: Slow down"}},
    ]
    failed = {
        "type": "response.failed",
        "response": {"status": "failed", "error": {"code": "context_length_exceeded", "message": "too long"}},
    }
    assert decode([sse(failed)])[-1]["error"] == {
        "type": "invalid_request_error",
        "message": "prompt is too long: too long",
    }


def test_unknown_events_and_items_are_ignored() -> None:
    message = _run(
        {"type": "response.queued", "response": {}},
        {"type": "response.web_search_call.searching", "output_index": 0, "item_id": "ws_1"},
        added(0, {"type": "web_search_call", "id": "ws_1"}),
        done(0, {"type": "web_search_call", "id": "ws_1"}),
        {"type": "response.output_item.added", "output_index": 1},
        {"type": "response.output_text.delta", "item_id": "m", "delta": ""},
        {"type": "response.output_text.delta", "item_id": "m", "delta": None},
        completed(),
    )
    assert message["content"] == [] and message["stop_reason"] == "end_turn"
