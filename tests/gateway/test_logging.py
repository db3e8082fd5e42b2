"""Every log line within a request carries its context; no secret ever reaches a log line."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import AsyncClient

from gateway.logcontext import JsonFormatter, RequestContextFilter, TextFormatter
from gateway.services import apikey_create
from providers.models import Provider
from tests.mocks.anthropic_upstream import MockAnthropicUpstream

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(previous)


@sync_to_async
def provider_and_key(upstream: MockAnthropicUpstream, credential: str) -> str:
    """A provider "up" at the mock upstream, and a new user's API key (its secret)."""
    Provider.objects.create(name="up", base_url=upstream.url, api_key=credential)
    user = User.objects.create_user(username="logger", password="x" * 12)
    return apikey_create(user=user).secret


async def post(secret: str, content: str, **headers: str) -> Any:
    return await AsyncClient().post(
        "/v1/messages",
        orjson.dumps({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": content}]}),
        content_type="application/json",
        headers={"x-api-key": secret, **headers},
    )


async def test_request_lines_carry_context_and_no_secrets(
    json_log: io.StringIO, upstream: MockAnthropicUpstream, settings: object
) -> None:
    settings.LYNKR_RETRY_MAX_RETRIES = 0  # type: ignore[attr-defined]
    secret = await provider_and_key(upstream, "sk-upstream-credential-123")
    response = await post(secret, "__error:529:x", **{"x-request-id": "trace-7"})
    assert response.status_code == 529
    lines = [orjson.loads(line) for line in json_log.getvalue().splitlines() if line.strip()]
    mine = [line for line in lines if line.get("request_id") == response.headers["request-id"]]
    assert mine, lines
    assert all(line["client_request_id"] == "trace-7" and line["key"] == secret.split("_")[0] for line in mine)
    assert any(line.get("provider") == "up" and line.get("attempt") == "1" for line in mine)
    text = json_log.getvalue()
    assert secret not in text and "sk-upstream-credential-123" not in text


async def test_the_request_line_written_after_the_answer_keeps_its_context(
    json_log: io.StringIO, upstream: MockAnthropicUpstream
) -> None:
    """The per-request line is written once the answer is out (gateway/upstream.py), with the request's fields."""
    secret = await provider_and_key(upstream, "k")
    response = await post(secret, "hi")
    assert response.status_code == 200
    request_id = response.headers["request-id"]
    lines = [orjson.loads(line) for line in json_log.getvalue().splitlines() if line.strip()]
    (line,) = [line for line in lines if "outcome=" in line["message"]]
    assert line["message"].startswith(f"request_id={request_id} key={secret.split('_')[0]} route=default provider=up")
    assert "outcome=ok" in line["message"] and "output_tokens=" in line["message"]
    assert (line["request_id"], line["key"], line["provider"]) == (request_id, secret.split("_")[0], "up")


def test_text_format_appends_the_context() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    RequestContextFilter().filter(record)
    record.request_id = "req_1"
    line = TextFormatter("%(message)s").format(record)
    assert line == "hello [request_id=req_1]"
