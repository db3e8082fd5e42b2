"""HTML to readable text for a model: the words of the page with line breaks where blocks end, no markup.

Pure (selectolax's lexbor parser, the HTML5 parsing algorithm browsers use, so broken markup reads as it renders).
Headings keep a Markdown ``#`` prefix and list items a ``-`` so the structure survives; ``<pre>`` keeps its
whitespace; scripts, styles and other non-content elements are dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from selectolax.lexbor import LexborHTMLParser, LexborNode

# Never content: code, styling, embedded documents and graphics.
_DROP = frozenset(
    {"script", "style", "noscript", "svg", "math", "iframe", "head", "template", "object", "embed", "canvas", "select"}
)
_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "dialog", "div", "dl", "dt",
        "fieldset", "figcaption", "figure", "footer", "form", "header", "hgroup", "hr", "legend", "li", "main",
        "nav", "ol", "p", "section", "summary", "table", "tbody", "tfoot", "thead", "tr", "ul",
    }
)  # fmt: skip
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_CELLS = frozenset({"td", "th"})
_SPACE = re.compile(r"\s+")
_BLANK_LINES = re.compile(r"\n{3,}")


@dataclass(frozen=True, slots=True)
class PageText:
    title: str
    text: str


def html_to_text(html: str) -> PageText:
    tree = LexborHTMLParser(html)
    title_node = tree.css_first("head > title") or tree.css_first("title")
    title = _SPACE.sub(" ", title_node.text(deep=True)).strip() if title_node is not None else ""
    start = tree.body or tree.root
    if start is None:
        return PageText(title=title, text="")
    out = _Writer()
    # An explicit stack, not recursion: pages nest thousands of elements deep often enough.
    stack: list[tuple[LexborNode, bool]] = [(start, True)]
    while stack:
        node, entering = stack.pop()
        tag = node.tag or ""
        if not entering:
            _leave(out, tag)
            continue
        if tag == "-text":
            out.text(node.text_content or "")
            continue
        if tag.startswith("-") or tag in _DROP or "hidden" in node.attributes:
            continue  # comments, doctype, non-content
        if tag == "br":
            out.newline(1)
            continue
        if tag == "pre":
            out.newline(2)
            out.raw(node.text(deep=True))
            out.newline(2)
            continue
        _enter(out, tag)
        stack.append((node, False))
        children = list(node.iter(include_text=True))
        stack.extend((child, True) for child in reversed(children))
    return PageText(title=title, text=out.result())


def _enter(out: _Writer, tag: str) -> None:
    if tag in _HEADINGS:
        out.newline(2)
        out.text("#" * _HEADINGS[tag] + " ")
    elif tag == "li":
        out.newline(1)
        out.text("- ")
    elif tag in ("p", "blockquote", "table", "ul", "ol", "dl", "section", "article"):
        out.newline(2)
    elif tag in _BLOCK:
        out.newline(1)


def _leave(out: _Writer, tag: str) -> None:
    if tag in _HEADINGS or tag in ("p", "blockquote", "table", "ul", "ol", "dl", "section", "article"):
        out.newline(2)
    elif tag in _BLOCK:
        out.newline(1)
    elif tag in _CELLS:
        out.text(" ")


class _Writer:
    """Collects text: collapses whitespace between words, never more than one blank line."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._last = "\n"
        self._newlines = 1  # trailing line breaks so far (the start counts as one: no leading blank line)

    def text(self, value: str) -> None:
        value = _SPACE.sub(" ", value)
        if self._last in (" ", "\n"):
            value = value.lstrip(" ")
        if value:
            self._parts.append(value)
            self._last = value[-1]
            self._newlines = 0

    def raw(self, value: str) -> None:
        if value:
            self._parts.append(value)
            self._last = value[-1]
            self._newlines = len(value) - len(value.rstrip("\n"))

    def newline(self, count: int) -> None:
        """End the line, with ``count - 1`` blank lines after it at least (not added to those already there)."""
        if count > self._newlines:
            self._parts.append("\n" * (count - self._newlines))
            self._newlines = count
        self._last = "\n"

    def result(self) -> str:
        lines = [line.rstrip() for line in "".join(self._parts).split("\n")]
        return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n")
