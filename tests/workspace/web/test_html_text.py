from __future__ import annotations

from workspace.web.html_text import html_to_text

PAGE = """<!doctype html>
<html><head><title>  The
  Page  </title><style>body { color: red }</style><script>var secret = 1;</script>
<meta name="description" content="meta words"></head>
<body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/about">About us</a></li></ul></nav>
<h1>Main   heading</h1>
<p>First <b>bold</b>   and <a href="https://example.com/x">linked text</a>,
spread over
lines.</p>
<p>Second paragraph.</p>
<pre>def f():
    return  1</pre>
<h3>Table</h3>
<table><tr><th>name</th><th>value</th></tr><tr><td>a</td><td>1</td></tr></table>
<div>one<br>two</div>
<noscript>enable javascript</noscript><svg><title>icon</title><text>svg text</text></svg>
<iframe src="/ad">frame text</iframe><template><p>template text</p></template>
<div hidden>hidden text</div><!-- a comment -->
<footer>Footer</footer>
</body></html>"""


def test_a_page_reads_as_lines_of_text() -> None:
    page = html_to_text(PAGE)

    assert page.title == "The Page"
    assert page.text == (
        "- Home\n"
        "- About us\n"
        "\n"
        "# Main heading\n"
        "\n"
        "First bold and linked text, spread over lines.\n"
        "\n"
        "Second paragraph.\n"
        "\n"
        "def f():\n"
        "    return  1\n"
        "\n"
        "### Table\n"
        "\n"
        "name value\n"
        "a 1\n"
        "\n"
        "one\n"
        "two\n"
        "Footer"
    )


def test_non_content_never_leaks() -> None:
    text = html_to_text(PAGE).text
    for dropped in ("secret", "color", "meta words", "javascript", "icon", "svg text", "frame", "template", "hidden"):
        assert dropped not in text
    assert "comment" not in text


def test_fragments_and_empty_documents() -> None:
    assert html_to_text("just <i>some</i> text").text == "just some text"
    assert html_to_text("").text == ""
    assert html_to_text("<title>Only a title</title>").title == "Only a title"
    assert html_to_text("<p>no title</p>").title == ""


def test_entities_are_decoded_and_whitespace_collapsed() -> None:
    page = html_to_text("<title>A &amp; B</title><p>x&nbsp;&lt;y&gt;\t\t z</p>")
    assert page.title == "A & B"
    assert page.text == "x <y> z"  # a non-breaking space is whitespace too


def test_deeply_nested_markup_does_not_recurse() -> None:
    depth = 5_000
    text = html_to_text("<div>" * depth + "deep" + "</div>" * depth).text
    assert text == "deep"


def test_broken_markup_reads_as_a_browser_would() -> None:
    assert html_to_text("<p>one<p>two<li>three").text == "one\n\ntwo\n\n- three"
