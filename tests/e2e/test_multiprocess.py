"""Two real ``lynkr serve`` processes sharing one database and one Redis: a routing change made by a third process
reaches both within ~2 s (the snapshot poller), and a circuit breaker opened through one is open in the other."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.e2e.server import ROOT, LynkrServer
from tests.mocks.anthropic_upstream import MockAnthropicUpstream
from tests.services import require_redis

pytestmark = [pytest.mark.e2e, pytest.mark.services]

REDIS_DB = 13  # this module's own database: flushed before and after
SECRET = "multiprocess-test-secret-key-0123456789abcdef"
T = TypeVar("T")

# A third process: Django set up against the same database and Redis as the servers, running one operation.
_MANAGE = """
import json, sys
import django
django.setup()
from providers.models import ModelMapping, Provider
from providers.services import routing_version_bump

op, args = sys.argv[1], json.loads(sys.argv[2])
if op == "provider":
    Provider.objects.create(kind="anthropic", api_key="upstream-secret", **args)
elif op == "override":
    # A queryset update fires no signal: the explicit bump is what tells the other processes.
    Provider.objects.filter(name=args["name"]).update(model_override=args["model_override"])
    routing_version_bump()
elif op == "mapping":
    # A model save fires the signal, which bumps the version on commit (as an admin save does).
    ModelMapping.objects.create(provider=Provider.objects.get(name=args.pop("provider")), **args)
print("version", routing_version_bump())
"""


@dataclass
class Cluster:
    a: LynkrServer
    b: LynkrServer
    redis_url: str
    primary: MockAnthropicUpstream
    fragile: MockAnthropicUpstream

    @property
    def servers(self) -> tuple[LynkrServer, LynkrServer]:
        return self.a, self.b

    def manage(self, op: str, **args: Any) -> None:
        """Run one configuration change in a third process (neither server)."""
        env = {**self.a.env(), "DJANGO_SETTINGS_MODULE": "lynkr_site.settings.base"}
        done = subprocess.run(
            [sys.executable, "-c", _MANAGE, op, json.dumps(args)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def _flush(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        client.flushdb()
    finally:
        client.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    redis_url = f"{require_redis()}/{REDIS_DB}"
    _flush(redis_url)
    shared: Path = tmp_path_factory.mktemp("shared-db")
    env = {
        "DATABASE_URL": f"sqlite:///{shared / 'lynkr.sqlite3'}",  # sqlite:////abs/path
        "REDIS_URL": redis_url,
        "SECRET_KEY": SECRET,
        "LYNKR_SECRET_KEY": SECRET,
        "API_RETRY_MAX_RETRIES": "0",  # one request = one upstream attempt = one breaker event
    }
    with MockAnthropicUpstream() as primary, MockAnthropicUpstream() as fragile:
        a = LynkrServer(data_dir=tmp_path_factory.mktemp("server-a"), env_extra=env).start()
        servers = [a]
        try:
            assert a.api_key.startswith("sk-lynkr-"), a.log()
            cluster = Cluster(a, a, redis_url, primary, fragile)
            cluster.manage("provider", name="primary", base_url=primary.url, model_override="model-v1")
            # Started after A has migrated and seeded the shared database; A's key works on both.
            cluster.b = LynkrServer(data_dir=tmp_path_factory.mktemp("server-b"), env_extra=env).start()
            servers.append(cluster.b)
            yield cluster
        finally:
            for server in servers:
                server.stop()
            _flush(redis_url)
        for server in servers:
            assert "Traceback" not in server.log(), server.log()
        assert primary.errors == [] and fragile.errors == []


def call(server: LynkrServer, api_key: str, model: str, prompt: str = "hi") -> httpx.Response:
    body = {"model": model, "max_tokens": 32, "messages": [{"role": "user", "content": prompt}]}
    return httpx.post(f"{server.url}/v1/messages?beta=true", json=body, headers={"x-api-key": api_key}, timeout=30)


def wait_for(check: Callable[[], T | None], timeout: float, interval: float = 0.05) -> tuple[T | None, float]:
    """Poll ``check`` until it returns something truthy; that value and the seconds it took."""
    started = time.monotonic()
    while True:
        value = check()
        elapsed = time.monotonic() - started
        if value or elapsed >= timeout:
            return value, elapsed
        time.sleep(interval)


def test_override_change_by_a_third_process_reaches_both_servers(cluster: Cluster) -> None:
    key = cluster.a.api_key
    for server in cluster.servers:  # both have a snapshot (and a running poller) before the change
        response = call(server, key, "claude-sonnet-5")
        assert response.status_code == 200, response.text
        assert response.headers["x-lynkr-route"] == "default"
        assert cluster.primary.messages_requests[-1].body["model"] == "model-v1"

    cluster.manage("override", name="primary", model_override="model-v2")
    for server in cluster.servers:

        def upstream_model(server: LynkrServer = server) -> str | None:
            response = call(server, key, "claude-sonnet-5")
            assert response.status_code == 200, response.text
            model = cluster.primary.messages_requests[-1].body["model"]
            return model if model == "model-v2" else None

        seen, elapsed = wait_for(upstream_model, timeout=2.0)
        assert seen == "model-v2", f"{server.url} still routes to the old model after {elapsed:.2f}s"


def test_mapping_saved_by_a_third_process_reaches_both_servers(cluster: Cluster) -> None:
    key = cluster.a.api_key
    for server in cluster.servers:
        assert call(server, key, "claude-mapped").headers["x-lynkr-route"] == "default"

    cluster.manage("mapping", pattern="claude-mapped", provider="primary", upstream_model="mapped-upstream")
    for server in cluster.servers:

        def route(server: LynkrServer = server) -> str | None:
            response = call(server, key, "claude-mapped")
            assert response.status_code == 200, response.text
            name = response.headers["x-lynkr-route"]
            return name if name == "mapping:claude-mapped" else None

        seen, elapsed = wait_for(route, timeout=2.0)
        assert seen, f"{server.url} did not pick up the mapping within {elapsed:.2f}s"
        assert cluster.primary.messages_requests[-1].body["model"] == "mapped-upstream"


def test_breaker_opened_through_one_server_is_open_in_the_other(cluster: Cluster) -> None:
    import redis

    key = cluster.a.api_key
    cluster.manage("provider", name="fragile", base_url=cluster.fragile.url, priority=500)
    cluster.manage("mapping", pattern="claude-fragile", provider="fragile")
    for server in cluster.servers:

        def routed(server: LynkrServer = server) -> bool:
            response = call(server, key, "claude-fragile")
            return response.status_code == 200 and response.headers["x-lynkr-provider"] == "fragile"

        assert wait_for(routed, timeout=5.0)[0], f"{server.url} never routed to the new provider"

    before = len(cluster.fragile.messages_requests)
    for n in range(1, 6):  # CIRCUIT_BREAKER_FAILURE_THRESHOLD default: 5
        response = call(cluster.a, key, "claude-fragile", "__error:500:api_error")
        assert response.status_code == 500, response.text
        assert len(cluster.fragile.messages_requests) == before + n

    client = redis.Redis.from_url(cluster.redis_url, decode_responses=True)
    try:
        states = {k: client.hgetall(k) for k in client.scan_iter(match="lynkr:breaker:*")}
    finally:
        client.close()
    assert [s["state"] for s in states.values()].count("open") == 1, states

    # Server B never saw a failure of its own, yet does not call the provider.
    response = call(cluster.b, key, "claude-fragile")
    assert response.status_code == 529, response.text
    assert response.json()["error"]["type"] == "overloaded_error"
    assert len(cluster.fragile.messages_requests) == before + 5
    # The other provider is unaffected (per-provider state) on both servers.
    for server in cluster.servers:
        assert call(server, key, "claude-sonnet-5").status_code == 200


def test_servers_share_the_database_not_the_data_dir(cluster: Cluster) -> None:
    assert cluster.a.data_dir != cluster.b.data_dir
    for server in cluster.servers:
        assert not (server.data_dir / "lynkr.sqlite3").exists()  # DATABASE_URL won over the data dir's default
