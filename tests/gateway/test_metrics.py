"""The metrics endpoints in-process: exact Prometheus deltas after a scripted mix of requests (loopback mock
upstreams), the JSON views, and who may read them. Metrics are process-global, so every assertion is a delta."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import AsyncClient
from prometheus_client.parser import text_string_to_metric_families

from gateway.breakers import breaker_store
from gateway.metrics import percentiles
from gateway.models import PriceEntry, RateLimit
from gateway.response_cache import response_cache
from gateway.services import apikey_create
from providers.models import Provider, RouteTier, RoutingRule, TierTarget
from tests.mocks.anthropic_upstream import MockAnthropicUpstream, error_response

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "claude-sonnet-5"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


class RemoteClient(AsyncClient):
    """A caller from 10.0.0.5. AsyncClient turns ``REMOTE_ADDR=...`` extras into a header, not the ASGI scope's
    ``client`` that Django reads REMOTE_ADDR from, so the scope is set here."""

    def _base_scope(self, **request: Any) -> dict[str, Any]:
        scope: dict[str, Any] = super()._base_scope(**request)
        scope["client"] = ["10.0.0.5", 40000]
        return scope


def body(text: str) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": text}]}


@pytest.fixture(autouse=True)
def _local_state(settings: Any) -> Iterator[None]:
    """In-memory breakers and rate limits (the Redis stores are tested elsewhere), and the response cache on."""
    settings.REDIS_URL = ""
    settings.LYNKR_PROMPT_CACHE_ENABLED = True
    settings.LYNKR_METRICS_TOKEN = ""
    breaker_store.cache_clear()
    response_cache.cache_clear()
    yield
    breaker_store.cache_clear()
    response_cache.cache_clear()


@dataclass(frozen=True)
class Setup:
    key: str
    limited_key: str
    alpha: Provider
    beta: Provider


def _setup(alpha_url: str, beta_url: str) -> Setup:
    user = User.objects.create_user(username="metrics-user", password="x" * 12)
    limited = User.objects.create_user(username="metrics-limited", password="x" * 12)
    RateLimit.objects.create(user=limited, requests_per_minute=0)
    alpha = Provider.objects.create(name="alpha", kind="anthropic", base_url=alpha_url, api_key="k", connect_timeout=2)
    beta = Provider.objects.create(name="beta", kind="anthropic", base_url=beta_url, api_key="k", connect_timeout=2)
    tier = RouteTier.objects.create(name="main", max_attempts=3)
    TierTarget.objects.create(tier=tier, provider=alpha, order=0)
    TierTarget.objects.create(tier=tier, provider=beta, order=1)
    RoutingRule.objects.create(name="everything", order=1, tier=tier)
    PriceEntry.objects.create(model_pattern="*", input_per_mtok=Decimal(3), output_per_mtok=Decimal(15))
    return Setup(apikey_create(user=user).secret, apikey_create(user=limited).secret, alpha, beta)


setup = sync_to_async(_setup)


async def post(key: str, payload: dict[str, Any]) -> Any:
    return await AsyncClient().post(
        "/v1/messages?beta=true", orjson.dumps(payload), content_type="application/json", headers={"x-api-key": key}
    )


async def scrape() -> Samples:
    response = await AsyncClient().get("/metrics/prometheus")
    assert response.status_code == 200
    assert response["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def deltas(before: Samples, after: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every series of ``name`` that changed."""
    keys = {k for k in (*before, *after) if k[0] == name}
    changed = {k[1]: after.get(k, 0.0) - before.get(k, 0.0) for k in keys}
    return {labels: value for labels, value in changed.items() if value}


async def observed() -> dict[str, Any]:
    response = await AsyncClient().get("/metrics/observability")
    assert response.status_code == 200
    return dict(orjson.loads(response.content))


def req(provider: str, upstream_model: str, rule: str, **extra: str) -> tuple[tuple[str, str], ...]:
    labels = {"provider": provider, "upstream_model": upstream_model, "client_model": MODEL, "route_rule": rule}
    return tuple(sorted({**labels, **extra}.items()))


def cost(usage: dict[str, Any]) -> float:
    return (usage["input_tokens"] * 3 + usage["output_tokens"] * 15) / 1_000_000


# --- the scripted mix --------------------------------------------------------------------------------------------


async def test_scripted_mix_gives_exact_deltas(
    upstream: MockAnthropicUpstream, second_upstream: MockAnthropicUpstream
) -> None:
    s = await setup(upstream.url, second_upstream.url)
    before, json_before = await scrape(), await observed()

    first = await post(s.key, body("first"))  # alpha answers (a cache miss, stored)
    assert first.status_code == 200 and first["x-lynkr-provider"] == "alpha"
    rule = first["x-lynkr-route"]
    upstream.enqueue(error_response(500, "api_error"))
    failed_over = await post(s.key, body("second"))  # alpha 500 -> beta answers (a miss)
    assert failed_over.status_code == 200 and failed_over["x-lynkr-provider"] == "beta"
    limited = await post(s.limited_key, body("third"))  # refused by the user's RateLimit row
    assert limited.status_code == 429
    hit = await post(s.key, body("first"))  # served from the response cache
    assert hit.status_code == 200 and hit["x-lynkr-cache"] == "hit"
    assert len(upstream.messages_requests) == 2 and len(second_upstream.messages_requests) == 1

    after = await scrape()
    u1, u2 = orjson.loads(first.content)["usage"], orjson.loads(failed_over.content)["usage"]
    alpha, beta = req("alpha", MODEL, rule), req("beta", MODEL, rule)
    none, cache = req("", "", ""), req("cache", "", "")
    assert deltas(before, after, "lynkr_requests_total") == {
        req("alpha", MODEL, rule, status="200"): 1,
        req("beta", MODEL, rule, status="200"): 1,
        req("", "", "", status="429"): 1,
        req("cache", "", "", status="200"): 1,
    }
    assert deltas(before, after, "lynkr_errors_total") == {req("", "", "", error_type="rate_limit_error"): 1}
    assert deltas(before, after, "lynkr_request_duration_seconds_count") == {alpha: 1, beta: 1, none: 1, cache: 1}
    assert deltas(before, after, "lynkr_time_to_first_token_seconds_count") == {alpha: 1, beta: 1}
    attempt = "lynkr_upstream_attempt_duration_seconds_count"
    assert deltas(before, after, attempt) == {
        (("provider", "alpha"), ("status", "200"), ("upstream_model", MODEL)): 1,
        (("provider", "alpha"), ("status", "500"), ("upstream_model", MODEL)): 1,
        (("provider", "beta"), ("status", "200"), ("upstream_model", MODEL)): 1,
    }
    assert deltas(before, after, "lynkr_fallbacks_total") == {(("provider", "alpha"), ("reason", "500")): 1}
    assert deltas(before, after, "lynkr_retries_total") == {}
    assert deltas(before, after, "lynkr_response_cache_total") == {(("result", "hit"),): 1, (("result", "miss"),): 2}
    assert deltas(before, after, "lynkr_rate_limit_rejections_total") == {(("client_model", MODEL),): 1}
    assert deltas(before, after, "lynkr_budget_rejections_total") == {}
    assert deltas(before, after, "lynkr_tokens_total") == {
        key: value
        for key, value in {
            req("alpha", MODEL, rule, kind="input"): u1["input_tokens"],
            req("alpha", MODEL, rule, kind="output"): u1["output_tokens"],
            req("beta", MODEL, rule, kind="input"): u2["input_tokens"],
            req("beta", MODEL, rule, kind="output"): u2["output_tokens"],
        }.items()
        if value
    }
    assert delta(before, after, "lynkr_cost_usd_total", **dict(alpha)) == pytest.approx(cost(u1))
    assert delta(before, after, "lynkr_cost_usd_total", **dict(beta)) == pytest.approx(cost(u2))
    assert delta(before, after, "lynkr_active_streams") == 0
    assert after[("lynkr_circuit_breaker_state", (("provider", "alpha"),))] == 0
    assert after[("lynkr_circuit_breaker_state", (("provider", "beta"),))] == 0
    assert ("lynkr_usage_buffer_depth", ()) in after

    json_after = await observed()
    requests_before, requests_after = json_before["requests"], json_after["requests"]
    assert requests_after["total"] - requests_before["total"] == 4
    assert requests_after["errors"] - requests_before["errors"] == 1
    assert 0 < requests_after["error_rate"] <= 1
    assert requests_after["rejections"]["rate_limit"] - requests_before["rejections"]["rate_limit"] == 1
    assert json_after["cache"]["hits"] - json_before["cache"]["hits"] == 1
    assert json_after["cache"]["misses"] - json_before["cache"]["misses"] == 2

    def provider(body: dict[str, Any], name: str, field: str) -> int:
        return int(body["providers"].get(name, {}).get(field, 0))

    assert provider(json_after, "alpha", "success") - provider(json_before, "alpha", "success") == 1
    assert provider(json_after, "alpha", "failure") - provider(json_before, "alpha", "failure") == 1
    assert provider(json_after, "beta", "success") - provider(json_before, "beta", "success") == 1
    for group in ("by_provider", "by_rule"):
        assert json_after["routing"][group] != json_before["routing"][group]
    assert json_after["routing"]["by_rule"][rule] - json_before["routing"]["by_rule"].get(rule, 0) == 2
    assert json_after["fallbacks"]["by_reason"]["500"] - json_before["fallbacks"]["by_reason"].get("500", 0) == 1
    tokens_delta = json_after["tokens"]["input"] - json_before["tokens"]["input"]
    assert tokens_delta == u1["input_tokens"] + u2["input_tokens"]
    assert float(Decimal(json_after["cost_usd"]) - Decimal(json_before["cost_usd"])) == pytest.approx(
        cost(u1) + cost(u2)
    )
    latency = json_after["latency_ms"]
    assert latency["samples"] >= 4 and latency["p50"] <= latency["p95"] <= latency["p99"]

    breakers = await AsyncClient().get("/metrics/circuit-breakers")
    rows = {row["provider"]: row for row in orjson.loads(breakers.content)["providers"]}
    assert rows["alpha"]["state"] == "closed" and rows["alpha"]["failures"] == 1
    assert rows["beta"] == {"provider": "beta", "provider_id": s.beta.id, "state": "closed", "value": 0, "failures": 0}


async def test_open_breaker_is_2_on_the_scrape(upstream: MockAnthropicUpstream) -> None:
    s = await setup(upstream.url, upstream.url)
    for _ in range(10):
        await breaker_store().apply(s.alpha.id, "failure")
    samples = await scrape()
    assert samples[("lynkr_circuit_breaker_state", (("provider", "alpha"),))] == 2
    rows = orjson.loads((await AsyncClient().get("/metrics/circuit-breakers")).content)["providers"]
    assert {row["provider"]: row["state"] for row in rows} == {"alpha": "open", "beta": "closed"}


def test_percentiles_are_exact_nearest_rank() -> None:
    assert percentiles(list(range(1, 101))) == {"p50": 50, "p95": 95, "p99": 99}
    assert percentiles([7]) == {"p50": 7, "p95": 7, "p99": 7}
    assert percentiles([]) == {"p50": None, "p95": None, "p99": None}
    assert percentiles([30, 10, 20, 40]) == {"p50": 20, "p95": 40, "p99": 40}


async def test_multiprocess_mode_merges_the_directory(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    response = await AsyncClient().get("/metrics/prometheus")
    assert response.status_code == 200  # an empty directory: nothing written yet, still a valid exposition
    list(text_string_to_metric_families(response.content.decode()))


# --- access ------------------------------------------------------------------------------------------------------

PATHS = ["/metrics/prometheus", "/metrics/observability", "/metrics/circuit-breakers"]


@pytest.mark.parametrize("path", PATHS)
async def test_remote_callers_are_refused(path: str) -> None:
    response = await RemoteClient().get(path)
    assert response.status_code == 403
    assert orjson.loads(response.content)["error"]["type"] == "permission_error"
    assert (await AsyncClient().get(path)).status_code == 200  # loopback (the test client's 127.0.0.1)


@pytest.mark.parametrize("path", PATHS)
async def test_bearer_token(path: str, settings: Any) -> None:
    settings.LYNKR_METRICS_TOKEN = "metrics-secret"
    ok = await RemoteClient().get(path, headers={"Authorization": "Bearer metrics-secret"})
    assert ok.status_code == 200
    wrong = await RemoteClient().get(path, headers={"Authorization": "Bearer metrics-secreT"})
    assert wrong.status_code == 403


async def test_no_token_configured_means_no_bearer_access() -> None:
    response = await RemoteClient().get("/metrics/observability", headers={"Authorization": "Bearer "})
    assert response.status_code == 403


async def test_staff_session_only() -> None:
    staff = await sync_to_async(User.objects.create_user)(username="ops", password="x" * 12, is_staff=True)
    plain = await sync_to_async(User.objects.create_user)(username="plain", password="x" * 12)
    client = RemoteClient()
    await client.aforce_login(staff)
    assert (await client.get("/metrics/observability")).status_code == 200
    other = RemoteClient()
    await other.aforce_login(plain)
    assert (await other.get("/metrics/observability")).status_code == 403


async def test_django_prometheus_database_and_cache_metrics_are_exported() -> None:
    from django.core.cache import cache
    from prometheus_client import REGISTRY, generate_latest

    await cache.aset("lynkr-metrics-probe", 1)
    await cache.aget("lynkr-metrics-probe")
    text = generate_latest(REGISTRY).decode()
    assert "django_cache_get_total" in text
    assert "django_db_new_connections_total" in text or "django_db_execute_total" in text


def test_labelled_children_are_looked_up_once_and_the_lookups_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway import metrics

    calls: list[tuple[str, ...]] = []
    labels = metrics.REQUESTS.labels

    def counting(*values: str) -> Any:
        calls.append(values)
        return labels(*values)

    monkeypatch.setattr(metrics.REQUESTS, "labels", counting)
    values = ("memo-provider", "memo-model", "memo-client", "memo-rule", "200")
    before = metrics.REQUESTS.labels(*values)._value.get()
    calls.clear()
    for _ in range(3):
        metrics._child(metrics.REQUESTS, *values).inc()
    assert calls == [values]  # once, then the same child
    assert labels(*values)._value.get() == before + 3  # the registry's own child counted all three
    monkeypatch.setattr(metrics, "_CHILDREN_MAX", 2)
    for n in range(5):
        metrics._child(metrics.REQUESTS, "memo-provider", "memo-model", "memo-client", "memo-rule", str(n))
    assert len(metrics._children) <= 2
