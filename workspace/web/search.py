"""``web_search``: ask the admin's SearXNG instance (its JSON search API) and return title, URL and snippet per hit.

SearXNG search API: ``GET /search?q=<query>&format=json`` answers ``{"results": [{"title", "url", "content",
"engine", ...}], ...}``; the JSON format must be enabled in its settings.yml (``search.formats``), otherwise it
answers 403 (https://docs.searxng.org/dev/search_api.html). The endpoint is configured by the admin (usually a
loopback or compose-network SearXNG), so the SSRF guard does not apply to it; the result URLs are only data.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, TypedDict

import orjson

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 4 * 1024 * 1024


class SearchFailed(Exception):
    """Search is not configured or its backend failed; the message is for the model (and the admin)."""


class SearchHit(TypedDict):
    title: str
    url: str
    snippet: str


def web_search(query: str, *, endpoint: str, limit: int, timeout: float) -> list[SearchHit]:
    """The first ``limit`` results SearXNG at ``endpoint`` gives for ``query``."""
    if not endpoint:
        raise SearchFailed("web search is not configured: WEB_SEARCH_ENDPOINT is empty")
    import httpx  # here, not at module level: loading the tools must not load httpx (~5 MB RSS), only a search

    not_configured = f"web search is not configured: WEB_SEARCH_ENDPOINT {endpoint}"
    try:
        # Merged into the endpoint's own query (language=, categories= ...): httpx's params= would replace it.
        url = httpx.URL(endpoint).copy_merge_params({"q": query, "format": "json"})
        # trust_env=False: the admin names the endpoint; a proxy from the environment must not reroute it.
        with (
            httpx.Client(trust_env=False, follow_redirects=False, timeout=timeout) as client,
            client.stream("GET", url) as response,
        ):
            body = _read_capped(response)
    except httpx.TimeoutException:
        raise SearchFailed(f"{not_configured} did not answer within {timeout:g} s") from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise SearchFailed(f"{not_configured} did not answer ({exc or type(exc).__name__})") from None
    if response.status_code == 403:
        raise SearchFailed(
            f"{not_configured} refused format=json (HTTP 403): "
            "enable 'json' in search.formats of SearXNG's settings.yml"
        )
    if response.status_code != 200:
        raise SearchFailed(f"web search failed: {endpoint} answered HTTP {response.status_code}")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise SearchFailed(f"{not_configured} did not answer JSON (is it a SearXNG /search URL?)") from None
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list):
        raise SearchFailed(f"{not_configured} answered JSON without a results list (is it a SearXNG /search URL?)")
    return parse_results(results, limit=limit)


def parse_results(results: list[Any], *, limit: int) -> list[SearchHit]:
    hits: list[SearchHit] = []
    for item in results:
        if len(hits) >= limit:
            break
        if not isinstance(item, dict) or not isinstance(item.get("url"), str) or not item["url"]:
            continue
        hits.append(SearchHit(title=_text(item.get("title")), url=item["url"], snippet=_text(item.get("content"))))
    return hits


def _text(value: Any) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


def _read_capped(response: httpx.Response) -> bytes:
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > MAX_ANSWER_BYTES:
            raise SearchFailed(f"web search failed: the answer is larger than {MAX_ANSWER_BYTES} bytes")
    return bytes(body)
