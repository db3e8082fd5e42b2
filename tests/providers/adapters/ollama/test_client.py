"""Asking an Ollama server about its models, against a loopback http.server (never any other address)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator

import orjson
import pytest

from providers.adapters.http import http_client
from providers.adapters.ollama import client
from providers.adapters.ollama.client import ollama_list_models, ollama_model_info
from providers.adapters.ollama.wire import UNKNOWN, ModelInfo
from tests.providers.adapters.ollama.support import LoopbackServer, provider

SHOW = {
    "model_info": {"general.architecture": "qwen3", "qwen3.context_length": 40960},
    "capabilities": ["completion", "tools", "thinking"],
}
QWEN3 = ModelInfo(context_length=40960, tools=True, thinking=True, known=True)
TAGS = {"models": [{"name": "qwen3:latest", "model": "qwen3:latest"}, {"name": "llava:7b", "model": "llava:7b"}]}


def ok(data: object) -> tuple[int, str, bytes]:
    return 200, "application/json; charset=utf-8", orjson.dumps(data)


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    client.ollama_model_info_cache_clear()
    yield
    client.ollama_model_info_cache_clear()


@pytest.fixture(autouse=True)
async def _close_http_client() -> AsyncIterator[None]:
    yield
    await http_client().aclose()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(client, "_clock", lambda: now[0])
    return now


async def test_model_info_asks_show_once_per_ttl(clock: list[float]) -> None:
    with LoopbackServer({("POST", "/api/show"): ok(SHOW)}) as server:
        config = provider(base_url=server.url + "/api/chat", credential="k", auth_style="bearer")
        assert await ollama_model_info(config, "qwen3") == QWEN3
        method, path, headers, body = server.requests[0]
        assert (method, path, orjson.loads(body)) == ("POST", "/api/show", {"model": "qwen3"})
        assert headers["authorization"] == "Bearer k" and headers["content-type"] == "application/json"
        clock[0] += client.MODEL_INFO_TTL - 1
        assert await ollama_model_info(config, "qwen3") == QWEN3
        assert len(server.requests) == 1  # cached
        await ollama_model_info(config, "llava")  # another model is another entry
        assert len(server.requests) == 2
        clock[0] += 2
        assert await ollama_model_info(config, "qwen3") == QWEN3
        assert len(server.requests) == 3  # expired: asked again


@pytest.mark.parametrize(
    "answer",
    [
        (404, "application/json", b'{"error":"model \\"nope\\" not found"}'),
        (200, "application/json", b"{not json"),
        (500, "text/plain", b"boom"),
    ],
)
async def test_model_info_failures_are_unknown_and_retried_soon(
    answer: tuple[int, str, bytes], clock: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    with LoopbackServer({("POST", "/api/show"): answer}) as server:
        config = provider(base_url=server.url)
        assert await ollama_model_info(config, "nope") is UNKNOWN
        assert await ollama_model_info(config, "nope") is UNKNOWN
        assert len(server.requests) == 1
        clock[0] += client.FAILURE_TTL + 1
        await ollama_model_info(config, "nope")
        assert len(server.requests) == 2
    assert "show model 'nope'" in caplog.text


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:{port}", "ftp://127.0.0.1:{port}", "http://[::1"])
async def test_unreachable_or_invalid_servers_never_raise(base_url: str) -> None:
    config = provider(base_url=base_url.format(port=_closed_port()), connect_timeout=1.0)
    assert await ollama_model_info(config, "qwen3") is UNKNOWN
    assert await ollama_list_models(config) == []


async def test_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client, "MAX_ENTRIES", 2)
    with LoopbackServer({("POST", "/api/show"): ok(SHOW)}) as server:
        config = provider(base_url=server.url)
        for model in ("a", "b", "a", "c"):
            await ollama_model_info(config, model)
        assert list(client._cache) == [(server.url, "b"), (server.url, "c")]
        assert len(server.requests) == 3


async def test_list_models() -> None:
    with LoopbackServer({("GET", "/api/tags"): ok(TAGS)}) as server:
        assert await ollama_list_models(provider(base_url=server.url + "/")) == ["qwen3:latest", "llava:7b"]
        assert server.requests[0][:2] == ("GET", "/api/tags")
    with LoopbackServer({}) as server:
        assert await ollama_list_models(provider(base_url=server.url)) == []
