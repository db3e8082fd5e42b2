"""Pure pieces of the server-side tool loop (gateway/toolloop.py): tools, tool_use / tool_result blocks, progress
lines, and the Anthropic events of the answer the client receives. No Django, no I/O.

Block shapes: https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/implement-tool-use (``tool_use`` in the
assistant's content, one ``tool_result`` per ``tool_use_id`` in the next user message, ``is_error`` for a
failure); stream events: https://docs.anthropic.com/en/api/messages-streaming.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from gateway.sse import Event, message_to_events

Block = dict[str, Any]

PROGRESS_MARK = "⏺"
_VALUE_CHARS = 60
_ARGS_CHARS = 200
_ERROR_CHARS = 120


def tools_merge(
    client_tools: Iterable[Block] | None, gateway_tools: Iterable[Block]
) -> tuple[list[Block], frozenset[str]]:
    """The request's tools followed by the gateway's, and the names the gateway answers for.

    A client tool with the same name wins (its tool_use goes back to the client). The gateway's come after the
    client's so the client's own prompt-cache prefix (tools are the first part of it) stays the same."""
    merged = list(client_tools or [])
    taken = {str(t.get("name")) for t in merged if isinstance(t, dict) and t.get("name")}
    ours: list[str] = []
    for spec in gateway_tools:
        name = str(spec["name"])
        if name in taken:
            continue
        taken.add(name)
        ours.append(name)
        merged.append(spec)
    return merged, frozenset(ours)


def tool_uses(content: Iterable[Block], gateway_names: frozenset[str]) -> tuple[list[Block], list[Block]]:
    """(the gateway's tool_use blocks, the client's tool_use blocks), in answer order."""
    gateway: list[Block] = []
    client: list[Block] = []
    for block in content:
        if block.get("type") == "tool_use":
            (gateway if block.get("name") in gateway_names else client).append(block)
    return gateway, client


def without_gateway_uses(content: Iterable[Block], gateway_names: frozenset[str]) -> list[Block]:
    return [b for b in content if not (b.get("type") == "tool_use" and b.get("name") in gateway_names)]


def truncate_utf8(text: str, max_bytes: int) -> tuple[str, bool]:
    raw = text.encode()
    if len(raw) <= max_bytes:
        return text, False
    return raw[:max_bytes].decode(errors="ignore"), True


def tool_result_block(tool_use_id: str, *, text: str, is_error: bool, max_bytes: int) -> Block:
    """One ``tool_result``: the tool's JSON result (or its error message) as text, cut at ``max_bytes``."""
    bounded, cut = truncate_utf8(text, max_bytes)
    if cut:
        bounded += f"\n[truncated by the gateway at {max_bytes} of {len(text.encode())} bytes]"
    block: Block = {"type": "tool_result", "tool_use_id": tool_use_id, "content": bounded}
    if is_error:
        block["is_error"] = True
    return block


def result_text(result: dict[str, Any] | None) -> str:
    return orjson.dumps(result).decode() if result is not None else "null"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def progress_line(name: str, arguments: Any, *, result: dict[str, Any] | None, error: str) -> str:
    """``⏺ workspace_symbol_search(query="helper") → 3 results``, one line, newline-terminated."""
    if isinstance(arguments, dict):
        parts = [f"{k}={_clip(orjson.dumps(v).decode(), _VALUE_CHARS)}" for k, v in arguments.items()]
        shown = _clip(", ".join(parts), _ARGS_CHARS)
    else:
        shown = ""
    if error:
        first = error.strip().splitlines()[0] if error.strip() else "failed"
        outcome = f"error: {_clip(first, _ERROR_CHARS)}"
    else:
        outcome = _result_summary(result)
    return f"{PROGRESS_MARK} {name}({shown}) → {outcome}\n"


def _result_summary(result: dict[str, Any] | None) -> str:
    if not isinstance(result, dict):
        return "ok"
    listed = next((v for v in result.values() if isinstance(v, list)), None)
    summary = (
        f"{len(listed)} result{'' if len(listed) == 1 else 's'}"
        if listed is not None
        else f"ok ({len(result_text(result).encode())} bytes)"
    )
    return summary + (", truncated" if result.get("truncated") is True else "")


def stopped_note(
    names: Iterable[str], *, limit: bool, stop_reason: str, policy: str, max_steps: int, max_tool_calls: int
) -> Block:
    """The text put in place of gateway tool_use blocks that were not run and cannot go to the client."""
    listed = ", ".join(sorted(set(names)))
    if limit:
        limits = f"max_steps={max_steps}, max_tool_calls={max_tool_calls}"
        why = f"reached its gateway tool limit (policy {policy!r}: {limits})"
    else:
        why = f"stopped ({stop_reason}) inside a gateway tool call"
    return {"type": "text", "text": f"[lynkr: this request {why}; not run: {listed}]"}


def start_event(message_id: str, model: str, input_estimate: int) -> Event:
    """message_start of the answer, sent before the final step is known: usage is an estimate here, and the
    final message_delta carries the final step's real usage."""
    message: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": input_estimate, "output_tokens": 0},
    }
    return {"type": "message_start", "message": message}


def progress_events(line: str, *, started: bool) -> list[Event]:
    """Events adding ``line`` to the progress text block (content index 0)."""
    events: list[Event] = []
    if not started:
        events.append({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    events.append({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": line}})
    return events


def answer_events(message: dict[str, Any], *, skip: int) -> list[Event]:
    """The content, message_delta and message_stop events of ``message``, leaving out its first ``skip`` blocks
    (the progress block, already streamed). message_delta carries the whole usage (the SDKs take input and cache
    tokens from it when present)."""
    events = message_to_events({**message, "content": list(message.get("content") or [])[skip:]})[1:]
    shifted: list[Event] = []
    for event in events:
        if "index" in event:
            event = {**event, "index": int(event["index"]) + skip}
        elif event.get("type") == "message_delta":
            event = {**event, "usage": dict(message.get("usage") or {})}
        shifted.append(event)
    return shifted
