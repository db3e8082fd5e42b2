"""Web access for the model-callable tools: search (SearXNG) and fetch behind an SSRF guard. Free of Django."""

from workspace.web.fetch import FetchFailed, FetchResult, web_fetch
from workspace.web.search import SearchFailed, SearchHit, web_search
from workspace.web.ssrf import UrlRefused, check_url

__all__ = [
    "FetchFailed",
    "FetchResult",
    "SearchFailed",
    "SearchHit",
    "UrlRefused",
    "check_url",
    "web_fetch",
    "web_search",
]
