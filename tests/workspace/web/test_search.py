"""web_search against a fake SearXNG on loopback (its JSON API shape: docs.searxng.org/dev/search_api.html)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from tests.workspace.web.servers import LoopbackServer, Reply
from workspace.web.search import SearchFailed, web_search

SEARXNG_ANSWER = {
    "query": "django ninja",
    "number_of_results": 3,
    "results": [
        {
            "url": "https://django-ninja.dev/",
            "title": "Django Ninja",
            "content": "Fast   web framework\nfor Django",
            "engine": "duckduckgo",
        },
        {"title": "no url, skipped", "content": "x", "engine": "bing"},
        {"url": "https://github.com/vitalik/django-ninja", "title": "GitHub", "engine": "google"},
        "not an object",
        {"url": "https://pypi.org/project/django-ninja/", "title": "PyPI", "content": "pip install", "engine": "x"},
    ],
    "answers": [],
    "suggestions": [],
}


def json_reply(data: object, status: int = 200) -> Reply:
    return Reply(status, orjson.dumps(data), {"Content-Type": "application/json"})


def test_results_come_back_as_title_url_snippet(server: LoopbackServer) -> None:
    server.routes["/search"] = json_reply(SEARXNG_ANSWER)

    hits = web_search("django ninja", endpoint=server.url("/search"), limit=5, timeout=5)

    assert hits == [
        {"title": "Django Ninja", "url": "https://django-ninja.dev/", "snippet": "Fast web framework for Django"},
        {"title": "GitHub", "url": "https://github.com/vitalik/django-ninja", "snippet": ""},
        {"title": "PyPI", "url": "https://pypi.org/project/django-ninja/", "snippet": "pip install"},
    ]
    query = parse_qs(urlsplit(server.seen[0].path).query)
    assert query == {"q": ["django ninja"], "format": ["json"]}


def test_the_limit_applies_and_endpoint_parameters_are_kept(server: LoopbackServer) -> None:
    server.routes["/search"] = json_reply(SEARXNG_ANSWER)

    hits = web_search("q & a", endpoint=server.url("/search?language=en"), limit=1, timeout=5)

    assert [hit["title"] for hit in hits] == ["Django Ninja"]
    assert parse_qs(urlsplit(server.seen[0].path).query) == {"language": ["en"], "q": ["q & a"], "format": ["json"]}


def test_an_unreachable_endpoint_says_search_is_not_configured(closed_port: int) -> None:
    endpoint = f"http://127.0.0.1:{closed_port}/search"
    with pytest.raises(SearchFailed) as failed:
        web_search("x", endpoint=endpoint, limit=5, timeout=5)
    assert str(failed.value).startswith(f"web search is not configured: WEB_SEARCH_ENDPOINT {endpoint} did not answer")


def test_a_silent_endpoint_times_out(silent_port: int) -> None:
    with pytest.raises(SearchFailed, match=r"did not answer within 0.5 s"):
        web_search("x", endpoint=f"http://127.0.0.1:{silent_port}/search", limit=5, timeout=0.5)


def test_an_empty_endpoint_is_not_configured() -> None:
    with pytest.raises(SearchFailed, match="WEB_SEARCH_ENDPOINT is empty"):
        web_search("x", endpoint="", limit=5, timeout=1)


@pytest.mark.parametrize("endpoint", ["localhost:8888/search", "http://[::1/search", "ftp://127.0.0.1/search"])
def test_a_malformed_endpoint_is_not_configured(endpoint: str) -> None:
    with pytest.raises(SearchFailed, match="web search is not configured"):
        web_search("x", endpoint=endpoint, limit=5, timeout=1)


def test_html_instead_of_json_is_explained(server: LoopbackServer) -> None:
    server.routes["/"] = Reply(200, b"<html>SearXNG</html>", {"Content-Type": "text/html"})
    with pytest.raises(SearchFailed, match="did not answer JSON"):
        web_search("x", endpoint=server.url("/"), limit=5, timeout=5)


def test_json_without_results_is_explained(server: LoopbackServer) -> None:
    server.routes["/search"] = json_reply({"detail": "nope"})
    with pytest.raises(SearchFailed, match="without a results list"):
        web_search("x", endpoint=server.url("/search"), limit=5, timeout=5)


def test_json_format_disabled_in_searxng_is_explained(server: LoopbackServer) -> None:
    server.routes["/search"] = Reply(403, b"Forbidden", {"Content-Type": "text/plain"})
    with pytest.raises(SearchFailed, match=r"enable 'json' in search\.formats"):
        web_search("x", endpoint=server.url("/search"), limit=5, timeout=5)


def test_other_http_errors_are_reported(server: LoopbackServer) -> None:
    server.routes["/search"] = Reply(502, b"bad gateway", {"Content-Type": "text/plain"})
    with pytest.raises(SearchFailed, match="answered HTTP 502"):
        web_search("x", endpoint=server.url("/search"), limit=5, timeout=5)
