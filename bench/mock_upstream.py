"""A minimal, fast mock LLM upstream for the hot-path benchmark: raw HTTP/1.1 on asyncio (uvloop when installed).

It must never be the bottleneck, so it parses only what it needs (request line, Content-Length / chunked request
bodies, Connection) and answers from bytes pre-rendered whenever its configuration changes. It speaks:

- OpenAI chat completions: ``POST .../chat/completions`` -> ``chat.completion`` JSON, or data-only SSE
  ``chat.completion.chunk`` events, a ``choices: []`` usage chunk and ``data: [DONE]``
  (https://platform.openai.com/docs/api-reference/chat-streaming);
- Anthropic Messages: ``POST .../v1/messages`` -> ``message`` JSON, or SSE with ``event:`` lines
  (message_start, content_block_start, content_block_delta x N, content_block_stop, message_delta, message_stop;
  https://docs.anthropic.com/en/api/messages-streaming);
- ``GET /__mock/config`` / ``POST /__mock/config`` (JSON): read or change the response shape at run time
  (``chunks``, ``text_bytes``, ``delay_ms`` before the first byte, ``interval_ms`` between chunks,
  ``hold_interval_ms`` / ``hold_seconds`` for held streams); ``GET /__mock/stats``: requests served, per API
  (``openai_chat``, ``anthropic``, ``other``: the harness checks every gateway request reached the upstream);
  anything else: 200 ``{}`` (Claude Code pre-warms with ``HEAD /``).

Streaming is detected without parsing the JSON body: ``"stream":true`` / ``"stream": true`` (orjson, json.dumps).
A request whose body contains ``BENCH-HOLD`` is answered with a *held* stream: one chunk every
``hold_interval_ms`` for ``hold_seconds`` (the concurrent-streams ramp keeps such streams open while it probes).

Run: ``python bench/mock_upstream.py --port 9000 [--chunks 20 --text-bytes 600 --delay-ms 0 --interval-ms 0]``;
it prints ``mock listening on 127.0.0.1:<port>`` once bound (``--port 0`` picks a free port).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from http1 import Request, install_uvloop, parse_request, raise_nofile_limit

HOLD_MARKER = b"BENCH-HOLD"
_STREAM_MARKERS = (b'"stream":true', b'"stream": true')
_WORDS = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do", "eiusmod")


@dataclass(frozen=True, slots=True)
class MockConfig:
    chunks: int = 20  # content deltas per streamed answer
    text_bytes: int = 600  # answer text size (split across the chunks)
    delay_ms: float = 0.0  # before the response starts (time to first token)
    interval_ms: float = 0.0  # between streamed chunks
    hold_interval_ms: float = 1000.0  # held streams: one chunk this often ...
    hold_seconds: float = 600.0  # ... for this long (the client normally hangs up first)
    input_tokens: int = 19000  # usage reported (a Claude Code turn is ~19k tokens)


def answer_text(size: int) -> str:
    words: list[str] = []
    length = 0
    i = 0
    while length - 1 < size:  # the joined text is one separator shorter than the running length
        word = _WORDS[i % len(_WORDS)]
        words.append(word)
        length += len(word) + 1
        i += 1
    return " ".join(words)[: max(size, 1)]


def split_text(text: str, parts: int) -> list[str]:
    parts = max(1, parts)
    step = max(1, -(-len(text) // parts))
    pieces = [text[i : i + step] for i in range(0, len(text), step)]
    return pieces + [""] * (parts - len(pieces))


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk (RFC 9112 §7.1)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def _json_response(body: bytes, status: bytes = b"200 OK") -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body) + body
    )


_SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
_SSE_HEAD += b"transfer-encoding: chunked\r\n\r\n"
_CHUNKED_END = b"0\r\n\r\n"


@dataclass(frozen=True, slots=True)
class Rendered:
    """Everything the mock sends, rendered once per configuration."""

    openai_json: bytes
    openai_first: bytes  # head + role chunk
    openai_deltas: tuple[bytes, ...]  # each a framed HTTP chunk
    openai_tail: bytes  # finish chunk, usage chunk, [DONE], end of body
    anthropic_json: bytes
    anthropic_first: bytes  # head + message_start + content_block_start
    anthropic_deltas: tuple[bytes, ...]
    anthropic_tail: bytes


def render(config: MockConfig) -> Rendered:
    text = answer_text(config.text_bytes)
    pieces = split_text(text, config.chunks)
    out_tokens = max(1, len(text) // 4)
    created = 1_700_000_000
    usage = {"prompt_tokens": config.input_tokens, "completion_tokens": out_tokens}
    usage["total_tokens"] = usage["prompt_tokens"] + out_tokens
    openai_json = _dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": created,
            "model": "gpt-mock",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": usage,
        }
    )

    def oa_chunk(delta: dict[str, Any], finish: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        event = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": created, "model": "gpt-mock"}
        return _chunk(b"data: " + _dumps({**event, "choices": [choice]}) + b"\n\n")

    usage_event = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": created, "model": "gpt-mock"}
    openai_tail = oa_chunk({}, "stop")
    openai_tail += _chunk(b"data: " + _dumps({**usage_event, "choices": [], "usage": usage}) + b"\n\n")
    openai_tail += _chunk(b"data: [DONE]\n\n") + _CHUNKED_END

    def an_event(name: str, data: dict[str, Any]) -> bytes:
        return _chunk(b"event: " + name.encode() + b"\ndata: " + _dumps(data) + b"\n\n")

    an_usage = {"input_tokens": config.input_tokens, "output_tokens": out_tokens}
    message = {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": "claude-mock",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": an_usage,
    }
    start = {**message, "content": [], "stop_reason": None, "usage": {**an_usage, "output_tokens": 1}}
    anthropic_first = _SSE_HEAD + an_event("message_start", {"type": "message_start", "message": start})
    anthropic_first += an_event(
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    )
    anthropic_deltas = tuple(
        an_event(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
        )
        for piece in pieces
    )
    anthropic_tail = an_event("content_block_stop", {"type": "content_block_stop", "index": 0})
    anthropic_tail += an_event(
        "message_delta",
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": an_usage},
    )
    anthropic_tail += an_event("message_stop", {"type": "message_stop"}) + _CHUNKED_END
    return Rendered(
        openai_json=_json_response(openai_json),
        openai_first=_SSE_HEAD + oa_chunk({"role": "assistant", "content": ""}, None),
        openai_deltas=tuple(oa_chunk({"content": piece}, None) for piece in pieces),
        openai_tail=openai_tail,
        anthropic_json=_json_response(_dumps(message)),
        anthropic_first=anthropic_first,
        anthropic_deltas=anthropic_deltas,
        anthropic_tail=anthropic_tail,
    )


class MockState:
    def __init__(self, config: MockConfig) -> None:
        self.config = config
        self.rendered = render(config)
        self.requests = 0
        self.by_api = {"openai_chat": 0, "anthropic": 0, "other": 0}
        self.open_streams = 0

    def configure(self, changes: dict[str, Any]) -> None:
        known = {k: type(getattr(self.config, k))(v) for k, v in changes.items() if hasattr(self.config, k)}
        self.config = replace(self.config, **known)
        self.rendered = render(self.config)


class MockProtocol(asyncio.Protocol):
    def __init__(self, state: MockState) -> None:
        self.state = state
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False  # an async answer (delays, held stream) is being written: later requests wait

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio.Transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._serve()

    def _serve(self) -> None:
        while not self.busy and self.transport is not None:
            request, used = parse_request(self.buf)
            if request is None:
                return
            del self.buf[:used]
            self.state.requests += 1
            self._answer(request)

    def _answer(self, request: Request) -> None:
        transport = self.transport
        assert transport is not None
        path = request.path.split(b"?", 1)[0]
        state = self.state
        if path.startswith(b"/__mock/"):
            transport.write(self._control(request.method, path, request.body))
        elif request.method != b"POST" or not (path.endswith(b"/chat/completions") or path.endswith(b"/messages")):
            state.by_api["other"] += 1
            transport.write(_json_response(b"{}"))
        else:
            openai = path.endswith(b"/chat/completions")
            state.by_api["openai_chat" if openai else "anthropic"] += 1
            body = request.body
            streaming = any(marker in body for marker in _STREAM_MARKERS)
            config = state.config
            if streaming and HOLD_MARKER in body:
                self._start_async(self._held(state.rendered, openai, config), request.close)
                return
            if config.delay_ms or (streaming and config.interval_ms):
                self._start_async(self._delayed(state.rendered, openai, streaming, config), request.close)
                return
            r = state.rendered
            if not streaming:
                transport.write(r.openai_json if openai else r.anthropic_json)
            elif openai:
                transport.write(r.openai_first + b"".join(r.openai_deltas) + r.openai_tail)
            else:
                transport.write(r.anthropic_first + b"".join(r.anthropic_deltas) + r.anthropic_tail)
        if request.close:
            transport.close()

    def _control(self, method: bytes, path: bytes, body: bytes) -> bytes:
        if path == b"/__mock/config":
            if method == b"POST":
                self.state.configure(json.loads(body or b"{}"))
            return _json_response(_dumps(asdict(self.state.config)))
        if path == b"/__mock/stats":
            stats = {"requests": self.state.requests, "open_streams": self.state.open_streams, **self.state.by_api}
            return _json_response(_dumps(stats))
        return _json_response(b'{"error":"unknown control path"}', b"404 Not Found")

    def _start_async(self, coro: Any, close: bool) -> None:
        self.busy = True
        task = asyncio.ensure_future(coro)
        task.add_done_callback(lambda _t: self._async_done(close))

    def _async_done(self, close: bool) -> None:
        self.busy = False
        if self.transport is None:
            return
        if close:
            self.transport.close()
            return
        self._serve()

    def _write(self, data: bytes) -> bool:
        if self.transport is None or self.transport.is_closing():
            return False
        self.transport.write(data)
        return True

    async def _delayed(self, r: Rendered, openai: bool, streaming: bool, config: MockConfig) -> None:
        if config.delay_ms:
            await asyncio.sleep(config.delay_ms / 1000)
        if not streaming:
            self._write(r.openai_json if openai else r.anthropic_json)
            return
        first, deltas, tail = (
            (r.openai_first, r.openai_deltas, r.openai_tail)
            if openai
            else (r.anthropic_first, r.anthropic_deltas, r.anthropic_tail)
        )
        if not self._write(first + deltas[0]):
            return
        for delta in deltas[1:]:
            if config.interval_ms:
                await asyncio.sleep(config.interval_ms / 1000)
            if not self._write(delta):
                return
        self._write(tail)

    async def _held(self, r: Rendered, openai: bool, config: MockConfig) -> None:
        first, deltas, tail = (
            (r.openai_first, r.openai_deltas, r.openai_tail)
            if openai
            else (r.anthropic_first, r.anthropic_deltas, r.anthropic_tail)
        )
        self.state.open_streams += 1
        try:
            if not self._write(first + deltas[0]):
                return
            deadline = time.monotonic() + config.hold_seconds
            i = 1
            while time.monotonic() < deadline:
                await asyncio.sleep(config.hold_interval_ms / 1000)
                if not self._write(deltas[i % len(deltas)]):
                    return
                i += 1
            self._write(tail)
        finally:
            self.state.open_streams -= 1


async def serve(host: str, port: int, config: MockConfig, ready: Any = None) -> None:
    state = MockState(config)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: MockProtocol(state), host, port, backlog=4096, reuse_address=True)
    bound = server.sockets[0].getsockname()[1]
    if ready is not None:
        ready(bound)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    defaults = MockConfig()
    for name in ("chunks", "text_bytes", "delay_ms", "interval_ms", "hold_interval_ms", "hold_seconds"):
        value = getattr(defaults, name)
        parser.add_argument("--" + name.replace("_", "-"), type=type(value), default=value)
    args = parser.parse_args(argv)
    config = MockConfig(
        chunks=args.chunks,
        text_bytes=args.text_bytes,
        delay_ms=args.delay_ms,
        interval_ms=args.interval_ms,
        hold_interval_ms=args.hold_interval_ms,
        hold_seconds=args.hold_seconds,
    )
    raise_nofile_limit()
    loop_name = install_uvloop()

    def ready(port: int) -> None:
        print(f"mock listening on {args.host}:{port} ({loop_name})", flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, config, ready))
    return 0


if __name__ == "__main__":
    sys.exit(main())
