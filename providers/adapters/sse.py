"""Incremental Server-Sent Events parser, pure and shared by every SSE-speaking backend.

Implements the parsing rules of https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
(``event``/``data`` fields, multi-line data joined with "\\n", comments ignored, CRLF/CR/LF line ends). Like
httpx's decoders it has ``feed(chunk) -> items`` and ``flush()``: bytes go in as they arrive from the network,
complete events come out, and nothing waits for the end of the stream.

It sits on the gateway's hot path, so a feed does its byte work in C: it cuts the buffer once after the last line
end, decodes the complete lines in one go (a line end is ASCII, never part of a UTF-8 sequence, so this equals
decoding line by line) and splits them with ``str.split``; the Python loop only looks at each line's first bytes.
"""

from __future__ import annotations

from typing import NamedTuple

_BOM = b"\xef\xbb\xbf"


class SseEvent(NamedTuple):
    event: str  # "" when the stream sent no ``event:`` line
    data: str


class SseParser:
    __slots__ = ("_buffer", "_data", "_event", "_started")

    def __init__(self) -> None:
        self._started = False
        self._buffer = b""
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[SseEvent]:
        buffer = self._buffer + chunk
        if not self._started:
            # The spec drops one leading U+FEFF byte order mark; wait until 3 bytes decide it.
            if len(buffer) < 3 and _BOM.startswith(buffer):
                self._buffer = buffer
                return []
            self._started = True
            if buffer.startswith(_BOM):
                buffer = buffer[3:]
        # ``in`` and indexing with ints are the cheapest byte tests Python has (memchr, no method call).
        if buffer and buffer[-1] == 10:  # LF last, the usual read: whole events, nothing left over
            self._buffer = b""
        elif 10 not in buffer and 13 not in buffer:  # still inside a line (a small read)
            self._buffer = buffer
            return []
        else:
            # A CR at the very end may be the first half of CRLF: it and its line wait for more bytes.
            end = len(buffer) - 1 if buffer[-1] == 13 else len(buffer)
            cut = buffer.rfind(b"\n", 0, end)
            cr = buffer.rfind(b"\r", 0, end)
            cut = (cr if cr > cut else cut) + 1
            self._buffer = buffer[cut:]
            if not cut:
                return []
            buffer = buffer[:cut]
        text = buffer.decode("utf-8", errors="replace")
        if "\r" in text:  # CRLF and a lone CR end a line as LF does
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        return self._text(text)

    def flush(self) -> list[SseEvent]:
        """End of stream: a last event not followed by a blank line still counts."""
        out: list[SseEvent] = []
        lines = [""]
        if self._buffer:
            lines.insert(0, self._buffer.rstrip(b"\r").decode("utf-8", errors="replace"))
            self._buffer = b""
        self._event, self._data = _lines(lines, self._event, self._data, out)
        return out

    def _text(self, text: str) -> list[SseEvent]:
        """The events of ``text``: whole lines, each ended by an LF."""
        out: list[SseEvent] = []
        event = self._event
        data = self._data
        # Cut at the blank lines: each block but the last is the lines of one event, then the blank line that
        # dispatches it. The usual block is a single ``data:`` line, made an event at once.
        blocks = text.split("\n\n")
        tail = blocks.pop()
        for block in blocks:
            if block.startswith("data: ") and not data and not event and "\n" not in block:
                out.append(SseEvent("", block[6:]))
            else:
                lines = block.split("\n")
                lines.append("")
                event, data = _lines(lines, event, data, out)
        lines = tail.split("\n")
        lines.pop()  # the empty piece after the last line end
        self._event, self._data = _lines(lines, event, data, out)
        return out


def _lines(lines: list[str], event: str, data: list[str], out: list[SseEvent]) -> tuple[str, list[str]]:
    """Interpret ``lines`` from the state (event type, data lines) the stream is in; events go to ``out``."""
    for line in lines:
        if not line:
            if data:
                out.append(SseEvent(event, "\n".join(data)))
                data = []
            event = ""
        elif not line.startswith(":"):  # a comment is ignored
            name, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
    return event, data
