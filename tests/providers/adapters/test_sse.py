"""SseParser: the incremental Server-Sent Events parser shared by every SSE-speaking backend.

Rules from https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation, plus the
one deliberate extension that ``flush()`` dispatches a last event not followed by a blank line.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.adapters.sse import SseEvent, SseParser


def _parse(chunks: list[bytes]) -> list[SseEvent]:
    parser = SseParser()
    events: list[SseEvent] = []
    for chunk in chunks:
        events += parser.feed(chunk)
    return events + parser.flush()


def _splits(data: bytes) -> list[list[bytes]]:
    """The same bytes cut every way that matters: whole, 1 byte at a time, and at fixed odd widths."""
    out = [[data], [data[i : i + 1] for i in range(len(data))]]
    for width in (2, 3, 5, 7, 11):
        out.append([data[i : i + width] for i in range(0, len(data), width)])
    # Every two-piece split, so the boundary falls once on every byte (inside CRLF too).
    out += [[data[:cut], data[cut:]] for cut in range(1, len(data))]
    return out


STREAM = b'event: message_start\ndata: {"a":1}\n\n: keepalive\n\ndata: x\ndata: y\n\nevent: ping\ndata:\n\n'
EXPECTED = [SseEvent("message_start", '{"a":1}'), SseEvent("", "x\ny"), SseEvent("ping", "")]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_every_line_ending_and_every_chunking_give_the_same_events(newline: bytes) -> None:
    data = STREAM.replace(b"\n", newline)
    for chunks in _splits(data):
        assert _parse(chunks) == EXPECTED, chunks


def test_mixed_line_endings_in_one_stream() -> None:
    assert _parse([b"data: a\r\ndata: b\rdata: c\n\r\n"]) == [SseEvent("", "a\nb\nc")]


def test_feed_returns_events_as_soon_as_their_blank_line_arrives() -> None:
    parser = SseParser()
    assert parser.feed(b"event: a\ndata: 1\n") == []
    assert parser.feed(b"\n") == [SseEvent("a", "1")]
    assert parser.feed(b"data: 2\n\ndata: 3\n\n") == [SseEvent("", "2"), SseEvent("", "3")]
    assert parser.flush() == []


def test_crlf_split_between_cr_and_lf_is_one_line_end_not_two() -> None:
    parser = SseParser()
    assert parser.feed(b"data: a\r") == []
    # Were the CR taken as a line end on its own, the LF would be a blank line and dispatch here.
    assert parser.feed(b"\n") == []
    assert parser.feed(b"\r") == []
    assert parser.feed(b"\n") == [SseEvent("", "a")]


def test_lone_cr_at_the_end_of_a_chunk_waits_for_the_next_byte() -> None:
    parser = SseParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\r") == []
    assert parser.feed(b"d") == [SseEvent("", "a")]
    assert parser.flush() == []  # "d" is a field name without a value; no data, nothing to dispatch


def test_comments_are_ignored_and_do_not_end_an_event() -> None:
    assert _parse([b": hello\ndata: a\n:\n: more\ndata: b\n\n"]) == [SseEvent("", "a\nb")]


def test_a_comment_only_stream_yields_nothing() -> None:
    assert _parse([b": ping\n\n: ping\n\n"]) == []


def test_multi_line_data_is_joined_with_newlines_keeping_empty_lines() -> None:
    assert _parse([b"data: one\ndata:\ndata: three\n\n"]) == [SseEvent("", "one\n\nthree")]


@pytest.mark.parametrize(
    ("line", "data"),
    [
        (b"data: x", "x"),
        (b"data:x", "x"),
        (b"data:  x", " x"),  # only one leading space is removed
        (b"data: x ", "x "),
        (b"data: a:b: c", "a:b: c"),  # only the first colon separates name and value
        (b"data", ""),  # a field name without a colon has the empty value
    ],
)
def test_data_field_with_and_without_the_space(line: bytes, data: str) -> None:
    assert _parse([line + b"\n\n"]) == [SseEvent("", data)]


def test_event_field_with_and_without_the_space() -> None:
    assert _parse([b"event:a\ndata: 1\n\nevent: b\ndata: 2\n\n"]) == [SseEvent("a", "1"), SseEvent("b", "2")]


def test_event_type_is_reset_after_dispatch() -> None:
    assert _parse([b"event: first\ndata: 1\n\ndata: 2\n\n"]) == [SseEvent("first", "1"), SseEvent("", "2")]


def test_event_type_is_reset_by_a_blank_line_even_without_data() -> None:
    # The spec resets the event type buffer whenever a blank line finds no data to dispatch.
    assert _parse([b"event: lost\n\ndata: 2\n\n"]) == [SseEvent("", "2")]


def test_a_later_event_line_replaces_an_earlier_one() -> None:
    assert _parse([b"event: a\nevent: b\ndata: 1\n\n"]) == [SseEvent("b", "1")]


def test_blank_lines_without_data_dispatch_nothing() -> None:
    assert _parse([b"\n\n\r\n\r\r\n"]) == []


@pytest.mark.parametrize(
    "field", [b"id: 7", b"retry: 1000", b"foo: bar", b"Data: upper-case is another field", b" data: x"]
)
def test_unknown_fields_are_ignored(field: bytes) -> None:
    assert _parse([b"data: a\n" + field + b"\ndata: b\n\n"]) == [SseEvent("", "a\nb")]


def test_flush_dispatches_a_final_event_without_a_trailing_blank_line() -> None:
    parser = SseParser()
    assert parser.feed(b"event: message_stop\ndata: {}\n") == []
    assert parser.flush() == [SseEvent("message_stop", "{}")]
    assert parser.flush() == []  # nothing left over


def test_flush_completes_a_final_line_without_a_line_end() -> None:
    parser = SseParser()
    assert parser.feed(b"data: 1\n\nevent: last\ndata: 2") == [SseEvent("", "1")]
    assert parser.flush() == [SseEvent("last", "2")]


def test_flush_strips_a_trailing_cr_it_was_still_waiting_on() -> None:
    parser = SseParser()
    assert parser.feed(b"data: x\r") == []
    assert parser.flush() == [SseEvent("", "x")]


def test_flush_of_a_pending_cr_that_is_the_blank_line() -> None:
    parser = SseParser()
    assert parser.feed(b"data: x\r\r") == []  # the second CR might still be half of a CRLF
    assert parser.flush() == [SseEvent("", "x")]


def test_flush_of_a_partial_line_that_holds_no_data() -> None:
    parser = SseParser()
    parser.feed(b"data: x\n\n: a comment without its line end")
    assert parser.flush() == []


def test_flush_on_a_fresh_parser_yields_nothing() -> None:
    assert SseParser().flush() == []


def test_the_parser_is_reusable_after_flush() -> None:
    parser = SseParser()
    parser.feed(b"event: a\ndata: 1")
    assert parser.flush() == [SseEvent("a", "1")]
    assert parser.feed(b"data: 2\n\n") == [SseEvent("", "2")]


def test_multi_byte_utf8_split_across_chunks_is_decoded_whole() -> None:
    data = "data: grüße — 21 \u00d7 462\n\n".encode()
    for chunks in _splits(data):
        assert _parse(chunks) == [SseEvent("", "grüße — 21 \u00d7 462")]


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert _parse([b"data: \xff\xfe ok\n\n"]) == [SseEvent("", "\ufffd\ufffd ok")]


def test_a_leading_byte_order_mark_is_ignored() -> None:
    assert _parse([b"\xef\xbb\xbfevent: message_start\ndata: {}\n\n"]) == [SseEvent("message_start", "{}")]


def test_an_empty_feed_yields_nothing_and_changes_nothing() -> None:
    parser = SseParser()
    assert parser.feed(b"") == []
    assert parser.feed(b"data: 1\n\n") == [SseEvent("", "1")]
    assert parser.feed(b"") == []
    assert parser.flush() == []


def test_a_byte_order_mark_split_across_feeds_is_ignored() -> None:
    parser = SseParser()
    assert parser.feed(b"\xef") == []
    assert parser.feed(b"\xbb") == []
    assert parser.feed(b"\xbfdata: 1\n\n") == [SseEvent("", "1")]


def test_one_read_of_many_whole_events_mixing_the_fast_and_the_general_path() -> None:
    stream = b"data: 1\n\nevent: e\ndata: 2\n\ndata: 3\ndata: 4\n\n\n\ndata:5\n\n: c\n\ndata: 6\n\nevent: x\n"
    parser = SseParser()
    assert parser.feed(stream) == [
        SseEvent("", "1"),
        SseEvent("e", "2"),
        SseEvent("", "3\n4"),
        SseEvent("", "5"),
        SseEvent("", "6"),
    ]
    # The pending event type must not leak into a following single-line event taken by the fast path.
    assert parser.feed(b"data: 7\n\ndata: 8\n\n") == [SseEvent("x", "7"), SseEvent("", "8")]


class _Reference:
    """The spec read line by line, one ``find`` at a time: the oracle the parser's fast paths are checked against."""

    def __init__(self) -> None:
        self.started = False
        self.buffer = b""
        self.event = ""
        self.data: list[str] = []

    def feed(self, chunk: bytes) -> list[SseEvent]:
        self.buffer += chunk
        if not self.started:
            if len(self.buffer) < 3 and b"\xef\xbb\xbf".startswith(self.buffer):
                return []
            self.started = True
            if self.buffer.startswith(b"\xef\xbb\xbf"):
                self.buffer = self.buffer[3:]
        out: list[SseEvent] = []
        while True:
            lf, cr = self.buffer.find(b"\n"), self.buffer.find(b"\r")
            if cr < 0 or 0 <= lf < cr:
                index, width = lf, 1
            elif cr + 1 < len(self.buffer):
                index, width = cr, 2 if self.buffer[cr + 1 : cr + 2] == b"\n" else 1
            else:
                index = -1  # a CR at the very end may be the first half of CRLF
            if index < 0:
                return out
            line, self.buffer = self.buffer[:index], self.buffer[index + width :]
            out += self.line(line.decode("utf-8", errors="replace"))

    def flush(self) -> list[SseEvent]:
        out: list[SseEvent] = []
        if self.buffer:
            out += self.line(self.buffer.rstrip(b"\r").decode("utf-8", errors="replace"))
            self.buffer = b""
        return out + self.line("")

    def line(self, line: str) -> list[SseEvent]:
        if line == "":
            data, self.data, event, self.event = self.data, [], self.event, ""
            return [SseEvent(event, "\n".join(data))] if data else []
        if not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                self.event = value
            elif name == "data":
                self.data.append(value)
        return []


_PIECES = st.sampled_from(
    [
        *(b"data", b"data:", b"data: ", b"event", b"event: ", b"id: 1", b":", b" ", b"x", b"{}", b"[DONE]"),
        *(b"data: {}\n\n", b"event: e\n", b": ping\n\n"),  # whole lines and events
        *(b"\n", b"\r", b"\r\n", b"\n\n", b"\xc3\xbc", b"\xe2\x82", b"\xff", b"\xef\xbb\xbf"),
    ]
)


@settings(max_examples=400, deadline=None, database=None)
@given(st.lists(_PIECES, max_size=40).map(b"".join), st.lists(st.integers(0, 64), max_size=12))
def test_any_stream_cut_anywhere_gives_what_the_line_by_line_reading_gives(stream: bytes, cuts: list[int]) -> None:
    positions = sorted({min(cut, len(stream)) for cut in cuts} | {0, len(stream)})
    parser, reference = SseParser(), _Reference()
    for start, end in itertools.pairwise(positions):
        chunk = stream[start:end]
        assert parser.feed(chunk) == reference.feed(chunk)  # the same events, from the same read
    assert parser.flush() == reference.flush()
