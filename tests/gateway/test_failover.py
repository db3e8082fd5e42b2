"""Retry, fallback and circuit breaker through the whole /v1/messages path (in-process, loopback mock upstreams).

Sleeps are recorded, not slept (the pipeline's ``asyncio`` is swapped for one whose ``sleep`` records), and the
jitter is fixed (``rand`` = 0.5), so every delay is exact and the tests take no wall time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import AsyncClient

from gateway import pipeline
from gateway.breakers import breaker_store
from gateway.services import apikey_create
from providers import resilience
from providers.models import Provider, RouteTier, RoutingRule, TierTarget
from providers.resilience import CLOSED, HALF_OPEN, OPEN, BreakerState, LocalBreakers
from tests.mocks.anthropic_upstream import MockAnthropicUpstream, ScriptedResponse, error_response, stream_events
from tests.services import free_port

pytestmark = pytest.mark.django_db(transaction=True)

JITTER = 0.5
OK = {"model": "claude-sonnet-5", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}


def failing(status: int, error_type: str) -> dict[str, Any]:
    """A request the mock answers with this error every time (its ``__error:<status>:<type>`` control)."""
    return {**OK, "messages": [{"role": "user", "content": f"__error:{status}:{error_type}"}]}


# --- fixtures ---------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_breakers(settings: Any) -> Iterator[None]:
    """The breaker store is cached per process (and keyed by provider id, which the DB reuses): one per test,
    in memory even when the environment names a Redis (the shared store is tested in tests/e2e)."""
    settings.REDIS_URL = ""
    breaker_store.cache_clear()
    yield
    breaker_store.cache_clear()


class _RecordingAsyncio:
    """The pipeline's view of ``asyncio``: everything real but ``sleep``, which only records."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    async def sleep(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    fake = _RecordingAsyncio()
    # Only the pipeline's sleeps: the routing poller and the test client keep the real asyncio.sleep.
    monkeypatch.setattr(pipeline, "asyncio", fake)
    # Full jitter with a fixed draw: delay = 0.5 * min(max_delay, initial * 2**n). ``rand`` is bound as a default.
    kwdefaults = resilience.retry_delay.__kwdefaults__
    assert kwdefaults is not None
    monkeypatch.setitem(kwdefaults, "rand", lambda: JITTER)
    return fake.delays


@pytest.fixture
def key() -> str:
    user = User.objects.create_user(username="failover-user", password="x" * 12)
    return apikey_create(user=user).secret


@dataclass(frozen=True)
class Chain:
    providers: list[Provider]
    rule: str


def _provider(name: str, url: str) -> Provider:
    return Provider.objects.create(name=name, kind="anthropic", base_url=url, api_key="k", connect_timeout=2)


def _chain(urls: dict[str, str], max_attempts: int = 3) -> Chain:
    """A tier with these providers in order, and a rule sending every request to it."""
    providers = [_provider(name, url) for name, url in urls.items()]
    tier = RouteTier.objects.create(name="main", max_attempts=max_attempts)
    for order, provider in enumerate(providers):
        TierTarget.objects.create(tier=tier, provider=provider, order=order)
    rule = RoutingRule.objects.create(name="everything", order=1, tier=tier)
    return Chain(providers, rule.name)


chain = sync_to_async(_chain)
provider = sync_to_async(_provider)


async def post(key: str, body: dict[str, Any]) -> Any:
    return await AsyncClient().post(
        "/v1/messages?beta=true", orjson.dumps(body), content_type="application/json", headers={"x-api-key": key}
    )


async def read_stream(response: Any) -> list[tuple[str, dict[str, Any]]]:
    raw = b"".join([chunk async for chunk in response.streaming_content]).decode()
    frames = []
    for frame in raw.split("\n\n"):
        if frame.strip():
            head, data = frame.split("\n", 1)
            frames.append((head.removeprefix("event: "), orjson.loads(data.removeprefix("data: "))))
    return frames


def error_of(response: Any) -> dict[str, Any]:
    body = orjson.loads(response.content)
    assert body["type"] == "error"
    return dict(body["error"])


async def breaker(provider_row: Provider) -> BreakerState:
    return await breaker_store().apply(provider_row.id, "check")


# --- retries with backoff on a single target --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_type", "client_status"),
    [(529, "overloaded_error", 529), (500, "api_error", 500), (503, "api_error", 500), (408, "timeout_error", 504)],
)
async def test_retryable_status_is_retried_with_exponential_full_jitter(
    status: int, error_type: str, client_status: int, key: str, upstream: MockAnthropicUpstream, sleeps: list[float]
) -> None:
    await chain({"only": upstream.url}, max_attempts=10)
    response = await post(key, failing(status, error_type))
    # 1 attempt + 3 retries (API_RETRY_MAX_RETRIES default), each after 0.5 * 1 s * 2**n.
    assert len(upstream.messages_requests) == 4
    assert sleeps == [0.5, 1.0, 2.0]
    assert response.status_code == client_status
    assert error_of(response)["type"] == ("timeout_error" if status == 408 else error_type)


async def test_backoff_ceiling_is_capped_at_max_delay(
    key: str, upstream: MockAnthropicUpstream, sleeps: list[float], settings: Any
) -> None:
    settings.LYNKR_RETRY_MAX_RETRIES = 6
    settings.LYNKR_RETRY_INITIAL_DELAY = 1.0
    settings.LYNKR_RETRY_MAX_DELAY = 5.0
    settings.LYNKR_BREAKER_FAILURES = 100  # 7 failures in a row would open the default breaker at the 5th
    breaker_store.cache_clear()
    await chain({"only": upstream.url}, max_attempts=20)
    await post(key, failing(529, "overloaded_error"))
    assert len(upstream.messages_requests) == 7
    assert sleeps == [0.5, 1.0, 2.0, 2.5, 2.5, 2.5]  # 0.5 * min(5, 1, 2, 4, 8, 16, 32)


async def test_retry_succeeds_invisibly(key: str, upstream: MockAnthropicUpstream, sleeps: list[float]) -> None:
    await provider("only", upstream.url)
    upstream.enqueue(error_response(529, "overloaded_error"))
    upstream.enqueue(error_response(503, "api_error"))
    response = await post(key, {**OK, "stream": True})
    frames = await read_stream(response)
    assert response.status_code == 200
    assert frames[0][0] == "message_start" and frames[-1][0] == "message_stop"
    assert not any(name == "error" for name, _ in frames)
    assert len(upstream.messages_requests) == 3
    assert sleeps == [0.5, 1.0]


async def test_default_settings_give_three_retries(
    key: str, upstream: MockAnthropicUpstream, sleeps: list[float]
) -> None:
    await provider("only", upstream.url)
    await post(key, failing(529, "overloaded_error"))
    assert sleeps == [0.5, 1.0, 2.0]
    assert len(upstream.messages_requests) == 4


async def test_default_route_attempt_cap(key: str, upstream: MockAnthropicUpstream, sleeps: list[float]) -> None:
    # Without a tier: each target once plus API_RETRY_MAX_RETRIES (3) retries on the last one.
    await provider("only", upstream.url)
    response = await post(key, failing(529, "overloaded_error"))
    assert response.status_code == 529
    assert len(upstream.messages_requests) == 4
    assert sleeps == [0.5, 1.0, 2.0]


async def test_429_retry_after_is_honoured(key: str, upstream: MockAnthropicUpstream, sleeps: list[float]) -> None:
    await chain({"only": upstream.url}, max_attempts=10)
    for _ in range(4):
        upstream.enqueue(
            ScriptedResponse(
                status=429,
                headers={"retry-after": "7"},
                body={"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}},
            )
        )
    response = await post(key, OK)
    assert sleeps == [7.0, 7.0, 7.0]  # the server's wait, not the jittered schedule
    assert len(upstream.messages_requests) == 4
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert error_of(response)["type"] == "rate_limit_error"


async def test_429_without_retry_after_uses_the_backoff(
    key: str, upstream: MockAnthropicUpstream, sleeps: list[float]
) -> None:
    await chain({"only": upstream.url}, max_attempts=10)
    for _ in range(4):
        upstream.enqueue(
            ScriptedResponse(status=429, body={"type": "error", "error": {"type": "rate_limit_error", "message": "x"}})
        )
    response = await post(key, OK)
    assert sleeps == [0.5, 1.0, 2.0]
    assert response.status_code == 429


async def test_429_retry_after_beyond_max_delay_goes_back_to_the_client(
    key: str, upstream: MockAnthropicUpstream, sleeps: list[float]
) -> None:
    await chain({"only": upstream.url}, max_attempts=10)
    upstream.enqueue(
        ScriptedResponse(
            status=429,
            headers={"retry-after": "120"},
            body={"type": "error", "error": {"type": "rate_limit_error", "message": "later"}},
        )
    )
    response = await post(key, OK)
    assert sleeps == []
    assert len(upstream.messages_requests) == 1
    assert response.status_code == 429 and response.headers["retry-after"] == "120"


async def test_429_then_success(key: str, upstream: MockAnthropicUpstream, sleeps: list[float]) -> None:
    await provider("only", upstream.url)
    upstream.enqueue(error_response(429, "rate_limit_error"))  # the mock's retry-after: 7
    response = await post(key, OK)
    assert response.status_code == 200
    assert orjson.loads(response.content)["content"] == [{"type": "text", "text": "Hello from mock"}]
    assert sleeps == [7.0]


@pytest.mark.parametrize(
    ("status", "error_type", "client_status"),
    [
        (400, "invalid_request_error", 400),
        (404, "not_found_error", 404),
        (413, "request_too_large", 413),
        (422, "invalid_request_error", 400),
    ],
)
async def test_client_errors_are_not_retried_nor_failed_over(
    status: int,
    error_type: str,
    client_status: int,
    key: str,
    upstream: MockAnthropicUpstream,
    second_upstream: MockAnthropicUpstream,
    sleeps: list[float],
) -> None:
    plan = await chain({"first": upstream.url, "second": second_upstream.url})
    response = await post(key, failing(status, error_type))
    assert response.status_code == client_status
    assert error_of(response)["type"] == error_type
    assert len(upstream.messages_requests) == 1
    assert second_upstream.messages_requests == []  # another target would refuse it too
    assert sleeps == []
    assert (await breaker(plan.providers[0])) == BreakerState()  # the request was at fault, not the provider


async def test_409_is_retried(key: str, upstream: MockAnthropicUpstream, sleeps: list[float]) -> None:
    await chain({"only": upstream.url}, max_attempts=10)
    await post(key, failing(409, "conflict_error"))
    assert len(upstream.messages_requests) == 4
    assert sleeps == [0.5, 1.0, 2.0]


async def test_connection_refused_is_retried(key: str, sleeps: list[float]) -> None:
    await chain({"down": f"http://127.0.0.1:{free_port()}"}, max_attempts=10)
    response = await post(key, OK)
    assert response.status_code == 500
    assert "cannot reach provider 'down'" in error_of(response)["message"]
    assert sleeps == [0.5, 1.0, 2.0]


async def test_no_retries_when_disabled(
    key: str, upstream: MockAnthropicUpstream, sleeps: list[float], settings: Any
) -> None:
    settings.LYNKR_RETRY_MAX_RETRIES = 0
    await chain({"only": upstream.url}, max_attempts=10)
    response = await post(key, failing(529, "overloaded_error"))
    assert response.status_code == 529
    assert len(upstream.messages_requests) == 1 and sleeps == []


# --- fallback to the next target before the first byte ----------------------------------------------------------


def _error_event(error_type: str = "overloaded_error") -> tuple[str, dict[str, Any]]:
    return "error", {"type": "error", "error": {"type": error_type, "message": "upstream says no"}}


def _message_start() -> tuple[str, dict[str, Any]]:
    return stream_events("u", [], "end_turn", 1)[0]


@pytest.mark.parametrize("failure", ["http-500", "http-529", "refused", "error-event-first", "error-after-start"])
async def test_failover_to_the_second_target_gives_one_clean_stream(
    failure: str,
    key: str,
    upstream: MockAnthropicUpstream,
    second_upstream: MockAnthropicUpstream,
    sleeps: list[float],
) -> None:
    first_url = f"http://127.0.0.1:{free_port()}" if failure == "refused" else upstream.url
    plan = await chain({"first": first_url, "second": second_upstream.url})
    if failure == "http-500":
        upstream.enqueue(error_response(500, "api_error"))
    elif failure == "http-529":
        upstream.enqueue(error_response(529, "overloaded_error"))
    elif failure == "error-event-first":
        upstream.enqueue(ScriptedResponse(events=[_error_event()]))
    elif failure == "error-after-start":
        # message_start and a ping are not content yet: the client has seen nothing, so this still fails over.
        upstream.enqueue(ScriptedResponse(events=[_message_start(), ("ping", {"type": "ping"}), _error_event()]))
    response = await post(key, {**OK, "stream": True})
    assert response.status_code == 200
    assert response.headers["x-lynkr-provider"] == "second"
    assert response.headers["x-lynkr-route"] == plan.rule
    frames = await read_stream(response)
    names = [name for name, _ in frames]
    assert names.count("message_start") == 1 and names[0] == "message_start" and names[-1] == "message_stop"
    assert "error" not in names
    text = "".join(d["delta"].get("text", "") for n, d in frames if n == "content_block_delta")
    assert text == "Hello from mock"
    assert len(second_upstream.messages_requests) == 1
    assert len(upstream.messages_requests) == (0 if failure == "refused" else 1)
    assert sleeps == []  # fast failover: no backoff before the next target
    assert (await breaker(plan.providers[0])).failures == 1
    assert (await breaker(plan.providers[1])) == BreakerState()


async def test_failover_non_streaming(
    key: str, upstream: MockAnthropicUpstream, second_upstream: MockAnthropicUpstream, sleeps: list[float]
) -> None:
    plan = await chain({"first": upstream.url, "second": second_upstream.url})
    upstream.enqueue(error_response(503, "api_error"))
    response = await post(key, OK)
    assert response.status_code == 200
    assert response.headers["x-lynkr-provider"] == "second"
    assert response.headers["x-lynkr-route"] == plan.rule
    assert orjson.loads(response.content)["content"] == [{"type": "text", "text": "Hello from mock"}]


async def test_last_target_is_the_one_retried(
    key: str, upstream: MockAnthropicUpstream, second_upstream: MockAnthropicUpstream, sleeps: list[float]
) -> None:
    await chain({"first": upstream.url, "second": second_upstream.url}, max_attempts=10)
    upstream.enqueue(error_response(500, "api_error"))
    second_upstream.enqueue(error_response(529, "overloaded_error"))
    second_upstream.enqueue(error_response(529, "overloaded_error"))
    response = await post(key, OK)
    assert response.status_code == 200 and response.headers["x-lynkr-provider"] == "second"
    assert len(upstream.messages_requests) == 1
    assert len(second_upstream.messages_requests) == 3
    assert sleeps == [0.5, 1.0]


async def test_every_target_failing_returns_the_last_error(
    key: str, upstream: MockAnthropicUpstream, second_upstream: MockAnthropicUpstream, sleeps: list[float]
) -> None:
    await chain({"first": upstream.url, "second": second_upstream.url}, max_attempts=2)
    upstream.enqueue(error_response(500, "api_error"))
    second_upstream.enqueue(error_response(529, "overloaded_error"))
    response = await post(key, {**OK, "stream": True})
    assert response.status_code == 529
    assert error_of(response)["type"] == "overloaded_error"
    assert len(upstream.messages_requests) == 1 and len(second_upstream.messages_requests) == 1
    assert sleeps == []  # the tier's attempt cap (2) was reached: no retry to wait for


# --- never retried after the first byte ---------------------------------------------------------------------------


async def test_error_after_content_ends_the_stream_and_is_not_retried(
    key: str, upstream: MockAnthropicUpstream, second_upstream: MockAnthropicUpstream, sleeps: list[float]
) -> None:
    await chain({"first": upstream.url, "second": second_upstream.url})
    events = stream_events("u", [{"type": "text", "text": "partial answer"}], "end_turn", 3)
    until_first_delta = events[: next(i for i, (name, _) in enumerate(events) if name == "content_block_delta") + 1]
    upstream.enqueue(ScriptedResponse(events=[*until_first_delta, _error_event("overloaded_error")]))
    response = await post(key, {**OK, "stream": True})
    assert response.status_code == 200 and response.headers["x-lynkr-provider"] == "first"
    frames = await read_stream(response)
    names = [name for name, _ in frames]
    assert names[0] == "message_start" and "content_block_delta" in names
    assert names[-1] == "error" and "message_stop" not in names
    assert frames[-1][1]["error"]["type"] == "overloaded_error"
    assert names.count("message_start") == 1
    assert len(upstream.messages_requests) == 1
    assert second_upstream.messages_requests == []
    assert sleeps == []


async def test_upstream_dropping_after_content_is_not_retried(
    key: str, upstream: MockAnthropicUpstream, sleeps: list[float]
) -> None:
    await provider("only", upstream.url)
    events = stream_events("u", [{"type": "text", "text": "partial answer"}], "end_turn", 3)
    upstream.enqueue(ScriptedResponse(events=events[:3]))  # message_start, content_block_start, ping; then EOF
    response = await post(key, {**OK, "stream": True})
    frames = await read_stream(response)
    assert frames[-1][0] == "error" and "ended before message_stop" in frames[-1][1]["error"]["message"]
    assert len(upstream.messages_requests) == 1 and sleeps == []


# --- circuit breaker ----------------------------------------------------------------------------------------------


@pytest.fixture
def no_retries(settings: Any) -> None:
    settings.LYNKR_RETRY_MAX_RETRIES = 0  # one request = one attempt = one breaker event


@dataclass
class Clock:
    now: float = 10_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    """The breaker store's clock, moved by hand (the open period passes without waiting)."""
    store = breaker_store()
    assert isinstance(store, LocalBreakers)  # no REDIS_URL in the in-process tests
    fake = Clock()
    store.clock = fake
    return fake


async def test_breaker_opens_after_5_failures_and_skips_the_provider(
    key: str, upstream: MockAnthropicUpstream, no_retries: None, clock: Clock, sleeps: list[float]
) -> None:
    row = await provider("only", upstream.url)
    for n in range(1, 6):
        response = await post(key, failing(500, "api_error"))
        assert response.status_code == 500
        assert len(upstream.messages_requests) == n
    assert (await breaker(row)) == BreakerState(OPEN, 5, 0, clock.now)
    response = await post(key, OK)  # would succeed, but the provider is not even asked
    assert response.status_code == 529
    assert error_of(response)["type"] == "overloaded_error"
    assert "circuit open" in error_of(response)["message"]
    assert len(upstream.messages_requests) == 5


async def test_breaker_counts_connection_failures(key: str, no_retries: None, clock: Clock) -> None:
    row = await provider("down", f"http://127.0.0.1:{free_port()}")
    for _ in range(5):
        assert (await post(key, OK)).status_code == 500
    assert (await breaker(row)).state == OPEN
    assert (await post(key, OK)).status_code == 529


async def test_breaker_counts_error_events_before_content(
    key: str, upstream: MockAnthropicUpstream, no_retries: None, clock: Clock
) -> None:
    row = await provider("only", upstream.url)
    for _ in range(5):
        upstream.enqueue(ScriptedResponse(events=[_message_start(), _error_event("api_error")]))
        assert (await post(key, {**OK, "stream": True})).status_code == 500
    assert (await breaker(row)).state == OPEN


async def test_success_resets_the_failure_count(
    key: str, upstream: MockAnthropicUpstream, no_retries: None, clock: Clock
) -> None:
    row = await provider("only", upstream.url)
    for _ in range(4):
        await post(key, failing(500, "api_error"))
    assert (await post(key, OK)).status_code == 200
    for _ in range(4):
        await post(key, failing(500, "api_error"))
    assert (await breaker(row)) == BreakerState(CLOSED, 4, 0, 0.0)  # consecutive failures only


async def test_open_target_is_skipped_for_the_next_one_in_the_chain(
    key: str,
    upstream: MockAnthropicUpstream,
    second_upstream: MockAnthropicUpstream,
    no_retries: None,
    clock: Clock,
) -> None:
    plan = await chain({"first": upstream.url, "second": second_upstream.url})
    for _ in range(5):
        upstream.enqueue(error_response(500, "api_error"))
        assert (await post(key, OK)).headers["x-lynkr-provider"] == "second"
    assert (await breaker(plan.providers[0])).state == OPEN
    for _ in range(3):
        response = await post(key, {**OK, "stream": True})
        assert response.status_code == 200 and response.headers["x-lynkr-provider"] == "second"
        assert response.headers["x-lynkr-route"] == plan.rule
        assert (await read_stream(response))[-1][0] == "message_stop"
    assert len(upstream.messages_requests) == 5  # skipped at once, not called
    assert len(second_upstream.messages_requests) == 8


async def test_breaker_half_opens_after_the_open_period_and_closes_after_2_successes(
    key: str, upstream: MockAnthropicUpstream, no_retries: None, clock: Clock
) -> None:
    row = await provider("only", upstream.url)
    for _ in range(5):
        await post(key, failing(500, "api_error"))
    opened_at = clock.now
    clock.now += 59.9
    assert (await post(key, OK)).status_code == 529
    assert len(upstream.messages_requests) == 5
    clock.now = opened_at + 60.0
    assert (await post(key, OK)).status_code == 200  # half-open: let through
    assert (await breaker(row)) == BreakerState(HALF_OPEN, 0, 1, opened_at)
    assert (await post(key, OK)).status_code == 200
    assert (await breaker(row)) == BreakerState()
    assert len(upstream.messages_requests) == 7


async def test_half_open_failure_reopens(
    key: str, upstream: MockAnthropicUpstream, no_retries: None, clock: Clock
) -> None:
    row = await provider("only", upstream.url)
    for _ in range(5):
        await post(key, failing(500, "api_error"))
    clock.now += 60.0
    assert (await post(key, OK)).status_code == 200
    assert (await post(key, failing(529, "overloaded_error"))).status_code == 529
    assert (await breaker(row)) == BreakerState(OPEN, 5, 0, clock.now)
    assert (await post(key, OK)).status_code == 529
    assert len(upstream.messages_requests) == 7  # the request after the reopening did not reach it


async def test_breaker_settings_are_read_from_django_settings(
    key: str, upstream: MockAnthropicUpstream, no_retries: None, settings: Any
) -> None:
    settings.LYNKR_BREAKER_FAILURES = 2
    settings.LYNKR_BREAKER_SUCCESSES = 1
    settings.LYNKR_BREAKER_OPEN_SECONDS = 0.05
    breaker_store.cache_clear()
    row = await provider("only", upstream.url)
    for _ in range(2):
        await post(key, failing(500, "api_error"))
    assert (await breaker(row)).state == OPEN
    assert (await post(key, OK)).status_code == 529
    await asyncio.sleep(0.1)  # the (real) open period passes
    assert (await post(key, OK)).status_code == 200
    assert (await breaker(row)) == BreakerState()  # one success is enough with this setting
    assert len(upstream.messages_requests) == 3


async def test_retries_feed_the_breaker_and_stop_when_it_opens(
    key: str, upstream: MockAnthropicUpstream, sleeps: list[float]
) -> None:
    row = await provider("only", upstream.url)
    await post(key, failing(500, "api_error"))  # 4 attempts: the first and 3 retries
    assert (await breaker(row)).failures == 4
    response = await post(key, failing(500, "api_error"))
    # The 5th failure opened the breaker between two retries: no further attempt was made.
    assert len(upstream.messages_requests) == 5
    assert (await breaker(row)).state == OPEN
    assert response.status_code == 500


# --- the pre-first-token hold -----------------------------------------------------------------------------------


async def test_hold_spans_a_slow_start_and_still_fails_over(
    key: str,
    upstream: MockAnthropicUpstream,
    second_upstream: MockAnthropicUpstream,
    sleeps: list[float],
    settings: Any,
) -> None:
    settings.LYNKR_FIRST_TOKEN_TIMEOUT = 5.0
    plan = await chain({"first": upstream.url, "second": second_upstream.url})
    # Silence between message_start and the error: the client's stream is still held, so this fails over.
    upstream.enqueue(ScriptedResponse(events=[_message_start(), _error_event()], chunk_delay=0.3))
    response = await post(key, {**OK, "stream": True})
    assert response.headers["x-lynkr-provider"] == "second" and response.headers["x-lynkr-route"] == plan.rule
    names = [name for name, _ in await read_stream(response)]
    assert names.count("message_start") == 1 and names[-1] == "message_stop"


async def test_hold_is_bounded_by_the_first_token_timeout(
    key: str, upstream: MockAnthropicUpstream, sleeps: list[float], settings: Any
) -> None:
    settings.LYNKR_FIRST_TOKEN_TIMEOUT = 0.2
    await provider("only", upstream.url)
    upstream.enqueue(ScriptedResponse(events=[_message_start()], hang_after=1))  # then only keepalives
    loop = asyncio.get_running_loop()
    started = loop.time()
    response = await post(key, {**OK, "stream": True})
    assert loop.time() - started < 2.0  # the response started after the bounded wait, not after content
    assert response.status_code == 200 and response.headers["x-lynkr-provider"] == "only"
    chunks = aiter(response.streaming_content)
    first = await anext(chunks)
    assert first.startswith(b"event: message_start\n")
    await chunks.aclose()  # type: ignore[attr-defined]


async def test_stream_slower_than_the_first_token_timeout_is_delivered_whole(
    key: str, upstream: MockAnthropicUpstream, sleeps: list[float], settings: Any
) -> None:
    settings.LYNKR_FIRST_TOKEN_TIMEOUT = 0.2
    await provider("only", upstream.url)
    events = stream_events("u", [{"type": "text", "text": "late but whole"}], "end_turn", 3)
    upstream.enqueue(ScriptedResponse(events=events, chunk_delay=0.4))  # content starts after 0.4 s
    response = await post(key, {**OK, "stream": True})
    frames = await read_stream(response)
    names = [name for name, _ in frames]
    assert names[-1] == "message_stop", names
    text = "".join(d["delta"].get("text", "") for n, d in frames if n == "content_block_delta")
    assert text == "late but whole"


async def test_timeout_before_the_answer_fails_over(
    key: str, upstream: MockAnthropicUpstream, second_upstream: MockAnthropicUpstream, sleeps: list[float]
) -> None:
    plan = await chain({"first": upstream.url, "second": second_upstream.url})
    await sync_to_async(Provider.objects.filter(pk=plan.providers[0].pk).update)(read_timeout=0.3)
    upstream.enqueue(ScriptedResponse(hang_after=0, hang_keepalive=None))  # never even sends a status line
    response = await post(key, {**OK, "stream": True})
    assert response.status_code == 200 and response.headers["x-lynkr-provider"] == "second"
    assert (await read_stream(response))[-1][0] == "message_stop"
    assert (await breaker(plan.providers[0])).failures == 1
