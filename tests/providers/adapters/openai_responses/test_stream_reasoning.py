"""Decoding reasoning items: summaries as thinking blocks, encrypted reasoning as their signatures (pure).

Events: https://platform.openai.com/docs/api-reference/responses-streaming (reasoning_summary_part/_text,
reasoning_text); encrypted reasoning: https://platform.openai.com/docs/guides/reasoning#encrypted-reasoning-items.
"""

from __future__ import annotations

from typing import Any

import pytest

from providers.adapters.common.signatures import signature_read

from ._helpers import SECRET, Json, added, completed, decode, done, fold, sse

# --- reasoning ------------------------------------------------------------------------------------------------

ENC = "gAAAAABenc"


def _reasoning(item_id: str = "rs_1", **fields: Any) -> Json:
    return {"id": item_id, "type": "reasoning", "summary": [], **fields}


def _summary(item_id: str, delta: str, index: int = 0, kind: str = "response.reasoning_summary_text.delta") -> Json:
    return {"type": kind, "item_id": item_id, "output_index": 0, "summary_index": index, "delta": delta}


def _part(item_id: str, index: Any) -> Json:
    return {
        "type": "response.reasoning_summary_part.added",
        "item_id": item_id,
        "output_index": 0,
        "summary_index": index,
    }


def _signature(message: Json, index: int = 0) -> Json | None:
    block = message["content"][index]
    return signature_read(block.get("signature") or block.get("data"), SECRET)


def test_summary_parts_are_paragraphs_of_one_thinking_block() -> None:
    events = decode(
        [
            sse(
                added(0, _reasoning()),
                _part("rs_1", 0),
                _part("rs_1", 1),  # nothing said yet: no separator
                _summary("rs_1", "First."),
                _part("rs_1", "1"),
                _part("rs_1", 1),
                _summary("rs_1", "Second.", 1),
                done(0, _reasoning(encrypted_content=ENC)),
                completed(),
            )
        ]
    )
    message = fold(events)
    assert message["content"][0]["thinking"] == "First.\n\nSecond."
    assert _signature(message) == {"k": "responses", "id": "rs_1", "enc": ENC}


def test_each_reasoning_item_gets_its_own_signed_thinking_block() -> None:
    message = fold(
        decode(
            [
                sse(
                    added(0, _reasoning("rs_1")),
                    _summary("rs_1", "One."),
                    done(0, _reasoning("rs_1", encrypted_content="enc1")),
                    added(1, _reasoning("rs_2")),
                    _summary("rs_2", "Two."),
                    done(1, _reasoning("rs_2", encrypted_content="enc2")),
                    completed(),
                )
            ]
        )
    )
    assert [(b["type"], b["thinking"]) for b in message["content"]] == [("thinking", "One."), ("thinking", "Two.")]
    assert [_signature(message, i)["id"] for i in (0, 1)] == ["rs_1", "rs_2"]  # type: ignore[index]


def test_reasoning_without_a_summary_is_a_signed_redacted_thinking_block() -> None:
    message = fold(decode([sse(added(0, _reasoning()), done(0, _reasoning(encrypted_content=ENC)), completed())]))
    assert message["content"][0]["type"] == "redacted_thinking"
    assert _signature(message) == {"k": "responses", "id": "rs_1", "enc": ENC}


def test_reasoning_whose_block_was_closed_by_other_output_is_signed_apart() -> None:
    text = {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 1, "delta": "Hi"}
    message = fold(
        decode(
            [
                sse(
                    added(0, _reasoning()),
                    _summary("rs_1", "Hm."),
                    text,
                    done(0, _reasoning(encrypted_content=ENC)),
                    completed(),
                )
            ]
        )
    )
    assert [b["type"] for b in message["content"]] == ["thinking", "text", "redacted_thinking"]
    assert message["content"][0]["signature"] == ""
    assert _signature(message, 2) == {"k": "responses", "id": "rs_1", "enc": ENC}


@pytest.mark.parametrize(
    "item", [_reasoning(), _reasoning(encrypted_content=None), _reasoning("", encrypted_content=ENC)]
)
def test_reasoning_without_encrypted_content_stays_unsigned(item: Json) -> None:
    message = fold(decode([sse(added(0, item), _summary(item["id"], "Hm."), done(0, item), completed())]))
    assert message["content"] == [{"type": "thinking", "thinking": "Hm.", "signature": ""}]


def test_reasoning_sent_only_in_the_done_item() -> None:
    summary = _reasoning(
        encrypted_content=ENC,
        summary=[
            {"type": "summary_text", "text": "A."},
            {"type": "summary_text", "text": ""},
            {"type": "summary_text", "text": "B."},
        ],
    )
    message = fold(decode([sse(done(0, summary), completed())]))
    assert message["content"][0]["thinking"] == "A.\n\nB."
    assert _signature(message) == {"k": "responses", "id": "rs_1", "enc": ENC}
    raw = _reasoning(content=[{"type": "reasoning_text", "text": "raw thoughts"}])
    assert fold(decode([sse(done(0, raw), completed())]))["content"] == [
        {"type": "thinking", "thinking": "raw thoughts", "signature": ""}
    ]


def test_raw_reasoning_text_deltas() -> None:
    delta = _summary("rs_1", "thinking out loud", kind="response.reasoning_text.delta")
    message = fold(decode([sse(added(0, _reasoning()), delta, done(0, _reasoning()), completed())]))
    assert message["content"] == [{"type": "thinking", "thinking": "thinking out loud", "signature": ""}]
