"""The web_search and web_fetch tools through tool_call: settings, policy, schemas, ToolError messages.

All traffic stays on loopback: the network guard of tests/workspace/web/servers.py is on for every test here, and
``docs.example.test`` resolves (socket.getaddrinfo patched) to 127.0.0.1.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from tests.workspace.web.servers import LoopbackServer, Reply, closed_port, loopback_only
from workspace.info import ToolContext
from workspace.tools import registry
from workspace.tools.registry import ToolDenied, ToolError, tool_call

__all__ = ["closed_port", "loopback_only"]

DOCS = "docs.example.test"


@pytest.fixture(autouse=True)
def _web_tools_only(monkeypatch: pytest.MonkeyPatch, loopback_only: list[str]) -> None:
    """Register just this module's tools, so these tests do not depend on the other tool modules importing."""
    import workspace.tools.web  # noqa: F401

    monkeypatch.setattr(registry, "_loaded", True)


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as running:
        yield running


@pytest.fixture
def docs_on_loopback(monkeypatch: pytest.MonkeyPatch, settings: Any, server: LoopbackServer) -> LoopbackServer:
    """docs.example.test -> 127.0.0.1, allowed by the admin settings (host listed, network opened)."""
    guarded = socket.getaddrinfo

    def resolve(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        return guarded("127.0.0.1" if host == DOCS else host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    settings.LYNKR_WEB_ALLOWED_HOSTS = [DOCS]
    settings.LYNKR_WEB_FETCH_ALLOW_NETWORKS = ["127.0.0.1/32"]
    settings.LYNKR_WEB_FETCH_TIMEOUT = 5.0
    return server


@pytest.fixture
def ctx(make_workspace: Callable[..., ToolContext], tmp_path: Any) -> ToolContext:
    return make_workspace(tmp_path)


def test_web_fetch_returns_the_page_as_text(ctx: ToolContext, docs_on_loopback: LoopbackServer) -> None:
    docs_on_loopback.routes["/guide"] = Reply(
        200, b"<title>Guide</title><h2>Install</h2><p>pip install lynkr</p>", {"Content-Type": "text/html"}
    )
    url = f"http://{DOCS}:{docs_on_loopback.port}/guide"

    result = tool_call(name="web_fetch", arguments={"url": url}, context=ctx)

    assert result == {
        "url": url,
        "final_url": url,
        "status": 200,
        "content_type": "text/html",
        "title": "Guide",
        "text": "## Install\n\npip install lynkr",
        "truncated": False,
    }
    assert docs_on_loopback.seen[0].headers["host"] == f"{DOCS}:{docs_on_loopback.port}"


def test_web_fetch_cuts_the_text_at_max_chars(ctx: ToolContext, docs_on_loopback: LoopbackServer) -> None:
    docs_on_loopback.routes["/long"] = Reply(200, b"x" * 5_000, {"Content-Type": "text/plain"})
    url = f"http://{DOCS}:{docs_on_loopback.port}/long"

    result = tool_call(name="web_fetch", arguments={"url": url, "max_chars": 100}, context=ctx)

    assert (result["text"], result["truncated"]) == ("x" * 100, True)


def test_web_fetch_byte_limit_comes_from_settings(
    ctx: ToolContext, docs_on_loopback: LoopbackServer, settings: Any
) -> None:
    settings.LYNKR_WEB_FETCH_MAX_BYTES = 1_024
    docs_on_loopback.routes["/long"] = Reply(200, b"y" * 5_000, {"Content-Type": "text/plain"})
    url = f"http://{DOCS}:{docs_on_loopback.port}/long"

    result = tool_call(name="web_fetch", arguments={"url": url, "max_chars": 10_000}, context=ctx)

    assert (len(result["text"]), result["truncated"]) == (1_024, True)


def test_web_fetch_refuses_loopback_with_the_reason(ctx: ToolContext, server: LoopbackServer, settings: Any) -> None:
    settings.LYNKR_WEB_ALLOWED_HOSTS = ["127.0.0.1"]  # listed, so the port is fine: the address is what refuses
    settings.LYNKR_WEB_FETCH_ALLOW_NETWORKS = []

    with pytest.raises(ToolError) as refused:
        tool_call(name="web_fetch", arguments={"url": server.url("/")}, context=ctx)

    assert str(refused.value) == "refused: 127.0.0.1 is a loopback address"
    assert server.seen == []


def test_web_fetch_refuses_a_redirect_to_metadata(
    ctx: ToolContext, docs_on_loopback: LoopbackServer, settings: Any
) -> None:
    settings.LYNKR_WEB_ALLOWED_HOSTS = [DOCS, "169.254.169.254"]
    docs_on_loopback.routes["/go"] = Reply(302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"})
    url = f"http://{DOCS}:{docs_on_loopback.port}/go"

    with pytest.raises(ToolError) as refused:
        tool_call(name="web_fetch", arguments={"url": url}, context=ctx)

    assert str(refused.value) == (
        f"refused: {url} redirected to http://169.254.169.254/latest/meta-data/: "
        "169.254.169.254 is a cloud metadata address"
    )


def test_web_fetch_failures_are_tool_errors(ctx: ToolContext, docs_on_loopback: LoopbackServer) -> None:
    docs_on_loopback.routes["/img"] = Reply(200, b"\x89PNG", {"Content-Type": "image/png"})
    with pytest.raises(ToolError, match="answered image/png"):
        tool_call(name="web_fetch", arguments={"url": f"http://{DOCS}:{docs_on_loopback.port}/img"}, context=ctx)
    with pytest.raises(ToolError, match="refused: only http and https"):
        tool_call(name="web_fetch", arguments={"url": "file:///etc/passwd"}, context=ctx)


def test_web_search_returns_hits(ctx: ToolContext, server: LoopbackServer, settings: Any) -> None:
    answer = {"results": [{"title": f"T{n}", "url": f"https://e.example/{n}", "content": "c"} for n in range(9)]}
    server.routes["/search"] = Reply(200, orjson.dumps(answer), {"Content-Type": "application/json"})
    settings.LYNKR_WEB_SEARCH_ENDPOINT = server.url("/search")

    default = tool_call(name="web_search", arguments={"query": "  lynkr  "}, context=ctx)
    two = tool_call(name="web_search", arguments={"query": "lynkr", "limit": 2}, context=ctx)

    assert default["query"] == "lynkr"
    assert [hit["title"] for hit in default["results"]] == ["T0", "T1", "T2", "T3", "T4"]
    assert two["results"] == [
        {"title": "T0", "url": "https://e.example/0", "snippet": "c"},
        {"title": "T1", "url": "https://e.example/1", "snippet": "c"},
    ]


def test_web_search_endpoint_down_is_a_clear_tool_error(ctx: ToolContext, closed_port: int, settings: Any) -> None:
    settings.LYNKR_WEB_SEARCH_ENDPOINT = f"http://127.0.0.1:{closed_port}/search"
    with pytest.raises(ToolError) as failed:
        tool_call(name="web_search", arguments={"query": "x"}, context=ctx)
    assert str(failed.value).startswith(
        f"web search is not configured: WEB_SEARCH_ENDPOINT http://127.0.0.1:{closed_port}/search did not answer"
    )


def test_web_search_blank_query_is_refused(ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match="query is empty"):
        tool_call(name="web_search", arguments={"query": "   "}, context=ctx)


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("web_search", {"query": "x", "limit": 21}, "limit"),
        ("web_search", {"query": "x", "limit": 0}, "limit"),
        ("web_search", {"query": "x", "engines": "all"}, "Additional properties"),
        ("web_search", {}, "required"),
        ("web_fetch", {"url": "https://e.example/", "max_chars": 10}, "max_chars"),
        ("web_fetch", {"url": "https://e.example/", "headers": {}}, "Additional properties"),
        ("web_fetch", {}, "required"),
    ],
)
def test_schemas_reject_bad_arguments(ctx: ToolContext, name: str, arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ToolError, match=message):
        tool_call(name=name, arguments=arguments, context=ctx)


def test_policy_without_web_refuses_both_tools(
    make_workspace: Callable[..., ToolContext], tmp_path: Any, server: LoopbackServer, settings: Any
) -> None:
    settings.LYNKR_WEB_SEARCH_ENDPOINT = server.url("/search")
    settings.LYNKR_WEB_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.LYNKR_WEB_FETCH_ALLOW_NETWORKS = ["127.0.0.1/32"]
    offline = make_workspace(tmp_path, policy={"web_enabled": False})

    with pytest.raises(ToolDenied, match="web access is disabled by policy"):
        tool_call(name="web_search", arguments={"query": "x"}, context=offline)
    with pytest.raises(ToolDenied, match="web access is disabled by policy"):
        tool_call(name="web_fetch", arguments={"url": server.url("/")}, context=offline)
    assert server.seen == []


def test_both_tools_are_registered_with_closed_schemas() -> None:
    specs = registry.tool_specs()
    for name in ("web_search", "web_fetch"):
        assert specs[name].input_schema["additionalProperties"] is False
        assert specs[name].policy_check is not None
        assert specs[name].mutates is False
