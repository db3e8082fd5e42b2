"""Incremental Server-Sent Events parser, pure and shared by every SSE-speaking backend.

Implements the parsing rules of https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
(``event``/``data`` fields, multi-line data joined with "\\n", comments ignored, CRLF/CR/LF line ends). Like
httpx's decoders it has ``feed(chunk) -> items`` and ``flush()``: bytes go in as they arrive from the network,
complete events come out, and nothing waits for the end of the stream.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SseEvent:
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
        self._buffer += chunk
        if not self._started:
            # The spec drops one leading U+FEFF byte order mark; wait until 3 bytes decide it.
            if len(self._buffer) < 3 and b"\xef\xbb\xbf".startswith(self._buffer):
                return []
            self._started = True
            if self._buffer.startswith(b"\xef\xbb\xbf"):
                self._buffer = self._buffer[3:]
        out: list[SseEvent] = []
        while True:
            index, width = _line_end(self._buffer)
            if index < 0:
                return out
            line = self._buffer[:index]
            self._buffer = self._buffer[index + width :]
            event = self._line(line.decode("utf-8", errors="replace"))
            if event is not None:
                out.append(event)

    def flush(self) -> list[SseEvent]:
        """End of stream: a last event not followed by a blank line still counts."""
        out: list[SseEvent] = []
        if self._buffer:
            event = self._line(self._buffer.rstrip(b"\r").decode("utf-8", errors="replace"))
            self._buffer = b""
            if event is not None:
                out.append(event)
        event = self._line("")
        if event is not None:
            out.append(event)
        return out

    def _line(self, line: str) -> SseEvent | None:
        if line == "":
            if not self._data:
                self._event = ""
                return None
            event = SseEvent(self._event, "\n".join(self._data))
            self._event = ""
            self._data = []
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None


def _line_end(buffer: bytes) -> tuple[int, int]:
    """Position and width of the first line terminator (CRLF, LF or a lone CR), or (-1, 0)."""
    lf = buffer.find(b"\n")
    cr = buffer.find(b"\r")
    if cr < 0:
        return (lf, 1) if lf >= 0 else (-1, 0)
    if lf >= 0 and lf < cr:
        return lf, 1
    if cr + 1 < len(buffer):
        return (cr, 2) if buffer[cr + 1 : cr + 2] == b"\n" else (cr, 1)
    # A CR at the very end may be the first half of CRLF: wait for more bytes.
    return -1, 0
