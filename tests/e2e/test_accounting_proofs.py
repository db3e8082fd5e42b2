"""Accounting proofs against real ``lynkr serve`` processes sharing one PostgreSQL database and one Redis.

1. Budgets hold across two processes: 64 concurrent requests against a USD and a token budget never overshoot by
   more than what the reservations under-estimated, some are refused by name, nothing stays reserved, and the
   usage records add up to the budget's spend to the last 1e-8 dollar.
2. A per-minute request limit on a key holds across both processes (Redis token bucket).
3. SIGTERM with 50 streams in flight: every request is billed exactly once (shutdown flush), seen after a restart.
4. The response cache is shared through Redis: a prompt answered by one process is a hit in the other.

Two defects found on the way are tested here too: in-flight requests must be billed when the server gets SIGTERM
(proof 3), and under ASGI concurrent requests must not leave PostgreSQL connections open (CONN_MAX_AGE 0).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

import httpx
import orjson
import pytest

from tests.e2e.server import ROOT, LynkrServer
from tests.mocks.anthropic_upstream import MockAnthropicUpstream, ScriptedResponse, stream_events
from tests.services import PG_HOST, PG_PORT, require_redis, require_service

pytestmark = [pytest.mark.e2e, pytest.mark.services]

REDIS_DB = 14  # this module's own Redis database: flushed before and after
SECRET = "accounting-proofs-secret-key-0123456789abcdef"
MODEL = "proof-model-1"  # matches no seeded price: the only price is ours
PRICE_IN, PRICE_OUT = Decimal("3.141593"), Decimal("15.271828")  # USD per million tokens, odd on purpose
MAX_TOKENS = 64  # the output reservation per request (below LYNKR_BUDGET_OUTPUT_RESERVATION)
BUDGET_REQUESTS = 64
USD_BUDGET, TOKEN_BUDGET = "proof-usd", "proof-tokens"
RPM = 10
RATE_REQUESTS = 30
STREAMS = 50
BURST = 30  # concurrent requests of the connection test
STREAM_BUDGET = "proof-streams"
EIGHT_PLACES = Decimal("0.00000001")


def cost(input_tokens: int, output_tokens: int) -> Decimal:
    """The price arithmetic, independently of gateway.pricing: USD per million, rounded to 1e-8."""
    total = Decimal(input_tokens) * PRICE_IN + Decimal(output_tokens) * PRICE_OUT
    return (total / Decimal(1_000_000)).quantize(EIGHT_PLACES)


def budget_body(n: int) -> bytes:
    """Every request the same size (so the same reservation) but a different prompt (so never a cache hit)."""
    prompt = f"budget proof {n:04d} " + "lorem ipsum " * 32
    return orjson.dumps({"model": MODEL, "max_tokens": MAX_TOKENS, "messages": [{"role": "user", "content": prompt}]})


# What one budget request reserves at admission: its body's bytes // 4 as input, max_tokens as output.
ESTIMATE = len(budget_body(0)) // 4
RESERVE_USD = cost(ESTIMATE, MAX_TOKENS)
RESERVE_TOKENS = ESTIMATE + MAX_TOKENS
# USD: 16 reservations fit at once. Tokens: a real request costs ~75% of its reservation, so ~32 requests fit in
# total: of the 64, some are refused whatever the timing.
LIMIT_USD = (RESERVE_USD * 16).quantize(Decimal("0.0001"), rounding=ROUND_DOWN)  # Budget.limit_usd: 4 places
LIMIT_TOKENS = RESERVE_TOKENS * 24

# A third process: Django set up against the servers' database, seeding users, keys, a price, budgets, limits.
_SEED = """
import json, sys
from decimal import Decimal
import django
django.setup()
from django.contrib.auth import get_user_model
from gateway.models import ApiKey, Budget, PriceEntry, RateLimit
from gateway.services import apikey_create

spec = json.loads(sys.argv[1])
for price in spec["prices"]:
    PriceEntry.objects.create(
        model_pattern=price["model_pattern"], provider=None, priority=price["priority"],
        input_per_mtok=Decimal(price["input"]), output_per_mtok=Decimal(price["output"]), note="accounting proof",
    )
out = {}
for name, want in spec["users"].items():
    user = get_user_model().objects.create_user(username=name)
    issued = apikey_create(user=user, name=name)
    key_id = ApiKey.objects.get(prefix=issued.prefix).pk
    budgets = {}
    for budget in want.get("budgets", []):
        limit_usd = Decimal(budget["limit_usd"]) if budget.get("limit_usd") else None
        budgets[budget["name"]] = Budget.objects.create(
            name=budget["name"], user=user, period="total", limit_usd=limit_usd,
            limit_tokens=budget.get("limit_tokens"),
        ).pk
    if want.get("requests_per_minute"):
        RateLimit.objects.create(api_key_id=key_id, requests_per_minute=want["requests_per_minute"])
    out[name] = {"secret": issued.secret, "user_id": user.pk, "key_id": key_id, "budgets": budgets}
print(json.dumps(out))
"""


@dataclass
class Account:
    secret: str
    user_id: int
    key_id: int
    budgets: dict[str, int] = field(default_factory=dict)


@dataclass
class Cluster:
    a: LynkrServer
    b: LynkrServer
    env: dict[str, str]
    database_url: str
    upstream: MockAnthropicUpstream
    accounts: dict[str, Account]
    tmp: pytest.TempPathFactory

    @property
    def servers(self) -> tuple[LynkrServer, LynkrServer]:
        return self.a, self.b

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.database_url) as conn:
            return conn.execute(sql, params).fetchall()


def _redis_flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def _postgres_admin() -> Any:
    import psycopg

    return psycopg.connect(f"postgresql://postgres@{PG_HOST}:{PG_PORT}/postgres", autocommit=True)


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this module, dropped afterwards."""
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    name = f"lynkr_proof_{uuid.uuid4().hex[:10]}"
    with _postgres_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgres://postgres@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with _postgres_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _seed(env: dict[str, str], spec: dict[str, Any]) -> dict[str, Account]:
    done = subprocess.run(
        [sys.executable, "-c", _SEED, json.dumps(spec)],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "lynkr_site.settings.base"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return {name: Account(**values) for name, values in json.loads(done.stdout.splitlines()[-1]).items()}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Cluster]:
    redis_url = f"{require_redis()}/{REDIS_DB}"
    _redis_flush(redis_url)
    with MockAnthropicUpstream() as upstream:
        env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": SECRET,
            "LYNKR_SECRET_KEY": SECRET,
            "MODEL_PROVIDER": "azure-anthropic",
            "AZURE_ANTHROPIC_ENDPOINT": f"{upstream.url}/anthropic/v1/messages",
            "AZURE_ANTHROPIC_API_KEY": "upstream-secret",
            "API_RETRY_MAX_RETRIES": "0",
            "PROMPT_CACHE_ENABLED": "true",  # proof 4; every other prompt here is unique
            # Workaround for the connection pile-up (test_postgres_connections_are_released_after_a_burst): with
            # the default LYNKR_DB_CONN_MAX_AGE=60 every concurrent request keeps its own PostgreSQL connection
            # open, and three servers exhaust max_connections=100 ("too many clients already" -> 500).
            "LYNKR_DB_CONN_MAX_AGE": "0",
        }
        servers: list[LynkrServer] = []
        try:
            # One at a time: A migrates the fresh database, B finds it migrated.
            servers.append(LynkrServer(data_dir=tmp_path_factory.mktemp("proof-a"), env_extra=env).start())
            servers.append(LynkrServer(data_dir=tmp_path_factory.mktemp("proof-b"), env_extra=env).start())
            accounts = _seed(
                servers[0].env(),
                {
                    "prices": [
                        {"model_pattern": MODEL, "priority": 1, "input": str(PRICE_IN), "output": str(PRICE_OUT)}
                    ],
                    "users": {
                        "budgeted": {
                            "budgets": [
                                {"name": USD_BUDGET, "limit_usd": str(LIMIT_USD)},
                                {"name": TOKEN_BUDGET, "limit_tokens": LIMIT_TOKENS},
                            ]
                        },
                        "limited": {"requests_per_minute": RPM},
                        "cached": {},
                        "burst": {},
                        "streamer": {"budgets": [{"name": STREAM_BUDGET, "limit_usd": "100"}]},
                    },
                },
            )
            yield Cluster(servers[0], servers[1], env, database_url, upstream, accounts, tmp_path_factory)
        finally:
            for server in servers:
                server.stop()
            _redis_flush(redis_url)
        for server in servers:
            assert "Traceback" not in server.log(), server.log()
        assert upstream.errors == [], upstream.errors


async def _post_all(bodies: list[tuple[LynkrServer, str, bytes]]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(bodies) + 8, max_keepalive_connections=len(bodies) + 8)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def one(server: LynkrServer, secret: str, body: bytes) -> httpx.Response:
            headers = {"x-api-key": secret, "content-type": "application/json", "anthropic-version": "2023-06-01"}
            return await client.post(f"{server.url}/v1/messages", content=body, headers=headers)

        return await asyncio.gather(*(one(*job) for job in bodies))


def _wait_for_records(cluster: Cluster, user_id: int, count: int, timeout: float = 10.0) -> list[tuple[Any, ...]]:
    """The user's kind="request" usage records, once ``count`` of them are in the database (write-behind)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = cluster.query(
            "SELECT request_id, cost_usd, input_tokens, output_tokens, status FROM gateway_usagerecord"
            " WHERE user_id = %s AND kind = 'request'",
            user_id,
        )
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def test_budgets_hold_across_two_processes(cluster: Cluster) -> None:
    account = cluster.accounts["budgeted"]
    bodies = [(cluster.servers[n % 2], account.secret, budget_body(n)) for n in range(BUDGET_REQUESTS)]
    assert {len(body) for _, _, body in bodies} == {len(budget_body(0))}
    upstream_before = len(cluster.upstream.messages_requests)

    responses = asyncio.run(_post_all(bodies))

    ok = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert len(ok) + len(refused) == BUDGET_REQUESTS, [(r.status_code, r.text) for r in responses]
    assert ok, "no request was admitted"
    assert refused, "every request was admitted: the budgets were never reached"
    for response in refused:
        error = response.json()["error"]
        assert error["type"] == "rate_limit_error", response.text
        assert f"budget '{USD_BUDGET}'" in error["message"] or f"budget '{TOKEN_BUDGET}'" in error["message"]
    assert all("x-lynkr-cache" not in r.headers for r in ok)
    # A refused request never reaches the upstream; each admitted one exactly once (retries are off).
    assert len(cluster.upstream.messages_requests) - upstream_before == len(ok)

    # What each admitted request really cost, from the usage the mock reported (input = upstream bytes // 4).
    usages = [r.json()["usage"] for r in ok]
    real_usd = [cost(u["input_tokens"], u["output_tokens"]) for u in usages]
    real_tokens = [u["input_tokens"] + u["output_tokens"] for u in usages]
    upstream_inputs = sorted(len(r.raw) // 4 for r in cluster.upstream.messages_requests[upstream_before:])
    assert sorted(u["input_tokens"] for u in usages) == upstream_inputs

    # Budgets are settled before the response is sent: final by now. Usage records are written behind (1 s).
    everything = _wait_for_records(cluster, account.user_id, len(ok) + len(refused))
    # Refusals are recorded too (status 429, nothing spent); the answered requests carry the spend.
    assert sorted(r[0] for r in everything if r[4] == 429) == sorted(r.headers["request-id"] for r in refused)
    records = [r for r in everything if r[4] == 200]
    usage_rows = cluster.query(
        "SELECT budget_id, spent_usd, spent_tokens, reserved_usd, reserved_tokens FROM gateway_budgetusage"
        " WHERE budget_id = ANY(%s)",
        list(account.budgets.values()),
    )
    by_budget = {row[0]: row[1:] for row in usage_rows}
    assert set(by_budget) == set(account.budgets.values()), usage_rows  # one row per budget and period, no more
    usd_spent, usd_tokens, usd_reserved, usd_reserved_tokens = by_budget[account.budgets[USD_BUDGET]]
    tok_spent_usd, tok_spent, tok_reserved_usd, tok_reserved = by_budget[account.budgets[TOKEN_BUDGET]]

    # Nothing stays reserved once every request has ended.
    assert (usd_reserved, usd_reserved_tokens, tok_reserved_usd, tok_reserved) == (0, 0, 0, 0), usage_rows

    # Spend is exactly the sum of the real costs, and exactly the sum of the usage records.
    assert usd_spent == tok_spent_usd == sum(real_usd, Decimal(0))
    assert usd_tokens == tok_spent == sum(real_tokens)
    assert sorted(r[0] for r in records) == sorted(r.headers["request-id"] for r in ok)
    assert sum((r[1] for r in records), Decimal(0)) == usd_spent
    assert sum(r[2] + r[3] for r in records) == tok_spent

    # Overshoot: at admission spent + reserved + this reservation <= limit, so the limit can only be passed by
    # what the reservations under-estimated (real above reserved), and never by more than 64 reservations.
    under_usd = sum((max(Decimal(0), real - RESERVE_USD) for real in real_usd), Decimal(0))
    under_tokens = sum(max(0, real - RESERVE_TOKENS) for real in real_tokens)
    assert usd_spent <= LIMIT_USD + under_usd, (usd_spent, LIMIT_USD, under_usd)
    assert tok_spent <= LIMIT_TOKENS + under_tokens, (tok_spent, LIMIT_TOKENS, under_tokens)
    assert usd_spent <= LIMIT_USD + BUDGET_REQUESTS * RESERVE_USD
    assert tok_spent <= LIMIT_TOKENS + BUDGET_REQUESTS * RESERVE_TOKENS


def test_rate_limit_holds_across_two_processes(cluster: Cluster) -> None:
    account = cluster.accounts["limited"]
    bodies = [
        (
            cluster.servers[n % 2],
            account.secret,
            orjson.dumps({"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": f"rate {n}"}]}),
        )
        for n in range(RATE_REQUESTS)
    ]
    started = time.monotonic()
    responses = asyncio.run(_post_all(bodies))
    elapsed = time.monotonic() - started

    allowed = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert len(allowed) + len(refused) == RATE_REQUESTS, [(r.status_code, r.text) for r in responses]
    # The bucket starts full (10) and refills 10/60 per second while the burst lasts.
    assert RPM <= len(allowed) <= RPM + 1 + int(elapsed * RPM / 60), (len(allowed), elapsed)
    # Each process alone saw 15 requests and would have admitted 10 of them with a per-process bucket (20 in all).
    assert Counter(r.url.port for r in responses) == {s.port: RATE_REQUESTS // 2 for s in cluster.servers}
    for response in refused:
        assert response.json()["error"]["type"] == "rate_limit_error", response.text
        assert int(response.headers["retry-after"]) >= 1
        assert response.headers["anthropic-ratelimit-requests-limit"] == str(RPM)
    for response in allowed:
        assert response.headers["anthropic-ratelimit-requests-limit"] == str(RPM)


def test_response_cache_is_shared_across_processes(cluster: Cluster) -> None:
    account = cluster.accounts["cached"]
    prompt = f"cache proof {uuid.uuid4().hex}"
    body = {"model": MODEL, "max_tokens": 32, "messages": [{"role": "user", "content": prompt}]}

    def ask(server: LynkrServer) -> httpx.Response:
        return httpx.post(f"{server.url}/v1/messages", json=body, headers={"x-api-key": account.secret}, timeout=30)

    first = ask(cluster.a)
    assert first.status_code == 200, first.text
    assert first.headers.get("x-lynkr-cache") != "hit"
    second = ask(cluster.b)
    assert second.status_code == 200, second.text
    assert second.headers.get("x-lynkr-cache") == "hit"
    assert second.json()["content"] == first.json()["content"]
    calls = [r for r in cluster.upstream.messages_requests if prompt.encode() in r.raw]
    assert len(calls) == 1


def _long_stream(n: int) -> list[Any]:
    # 8 text blocks: ~45 events, 0.5 s apart: each stream would last ~20 s, far beyond the SIGTERM.
    blocks = [{"type": "text", "text": f"stream {n} part {i} " * 4} for i in range(8)]
    return stream_events(MODEL, blocks, "end_turn", 100)


async def _streams_then_sigterm(server: LynkrServer, secret: str) -> tuple[list[str], int]:
    """50 streams; once every one has its first bytes, SIGTERM the server. The request ids, and how many streams
    had reached message_stop (none should have)."""
    started = 0
    all_started = asyncio.Event()
    ids: list[str] = []
    completed = 0
    limits = httpx.Limits(max_connections=STREAMS + 8, max_keepalive_connections=STREAMS + 8)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def one(n: int) -> None:
            nonlocal started, completed
            body = {
                "model": MODEL,
                "max_tokens": 64,
                "stream": True,
                "messages": [{"role": "user", "content": f"sigterm proof {n} {uuid.uuid4().hex}"}],
            }
            seen = b""
            try:
                async with client.stream(
                    "POST", f"{server.url}/v1/messages", json=body, headers={"x-api-key": secret}
                ) as response:
                    assert response.status_code == 200, await response.aread()
                    ids.append(response.headers["request-id"])
                    async for chunk in response.aiter_bytes():
                        if not seen:
                            started += 1
                            if started == STREAMS:
                                all_started.set()
                        seen += chunk
            except httpx.TransportError:
                pass  # the server went away mid-stream: expected
            if b"event: message_stop" in seen:
                completed += 1

        tasks = [asyncio.create_task(one(n)) for n in range(STREAMS)]
        # Until every stream has its first bytes, or one has failed before them (a 500, ...).
        pending: set[asyncio.Future[Any]] = {asyncio.ensure_future(all_started.wait()), *tasks}
        deadline = time.monotonic() + 20
        while not all_started.is_set() and time.monotonic() < deadline:
            done, pending = await asyncio.wait(
                pending, timeout=deadline - time.monotonic(), return_when=asyncio.FIRST_COMPLETED
            )
            if any(t.exception() is not None for t in done if t in tasks):
                break
        for waiter in pending - set(tasks):
            waiter.cancel()
        failed = [t.exception() for t in tasks if t.done() and t.exception() is not None]
        if failed or not all_started.is_set():
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise AssertionError(f"only {started} of {STREAMS} streams started; first failure: {failed[:1]}")
        await asyncio.to_thread(server.stop)
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
    return ids, completed


def _connections(cluster: Cluster) -> int:
    """Connections to the module's database, not counting the one asking."""
    return int(cluster.query("SELECT count(*) - 1 FROM pg_stat_activity WHERE datname = current_database()")[0][0])


def test_postgres_connections_are_released_after_a_burst(cluster: Cluster) -> None:
    account = cluster.accounts["burst"]
    defaults = {k: v for k, v in cluster.env.items() if k != "LYNKR_DB_CONN_MAX_AGE"}
    server = LynkrServer(data_dir=cluster.tmp.mktemp("proof-burst"), env_extra=defaults).start()
    try:
        before = _connections(cluster)
        bodies = [
            (
                server,
                account.secret,
                orjson.dumps({"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": f"b{n}"}]}),
            )
            for n in range(BURST)
        ]
        responses = asyncio.run(_post_all(bodies))
        assert [r.status_code for r in responses] == [200] * BURST
        time.sleep(3)  # past the usage flush; a released connection is gone by now
        held = _connections(cluster) - before
    finally:
        server.stop()
    # Bounded by the database thread pool (LYNKR_DB_THREADS, default 8; gateway/db.py), not one per request.
    assert held <= 8, f"{held} PostgreSQL connections still open 3 s after {BURST} concurrent requests"


def test_sigterm_with_streams_in_flight_bills_each_request_once(cluster: Cluster) -> None:
    account = cluster.accounts["streamer"]
    # Same database, Redis, provider and mock as the cluster (which is idle meanwhile): the scripted streams are
    # answered to this server's requests only.
    for n in range(STREAMS):
        cluster.upstream.enqueue(ScriptedResponse(events=_long_stream(n), chunk_delay=0.5))
    # A short drain: streams still running after it are cancelled, and must be billed all the same.
    env = {**cluster.env, "GRACEFUL_SHUTDOWN_TIMEOUT": "2000"}
    server = LynkrServer(data_dir=cluster.tmp.mktemp("proof-sigterm"), env_extra=env).start()
    try:
        ids, completed = asyncio.run(_streams_then_sigterm(server, account.secret))
    finally:
        server.stop()
    assert server.process is not None and server.process.returncode == 0, server.log()
    assert "Traceback" not in server.log(), server.log()
    assert len(ids) == len(set(ids)) == STREAMS
    assert completed == 0, "a stream finished before the SIGTERM: the proof needs them in flight"

    restarted = LynkrServer(data_dir=cluster.tmp.mktemp("proof-restart"), env_extra=cluster.env).start()
    try:
        # The restarted server serves; it has nothing of the old process's to write.
        response = httpx.post(
            f"{restarted.url}/v1/messages",
            json={"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": uuid.uuid4().hex}]},
            headers={"x-api-key": account.secret},
            timeout=30,
        )
        assert response.status_code == 200, response.text
    finally:
        restarted.stop()
    assert "Traceback" not in restarted.log(), restarted.log()

    rows = cluster.query(
        "SELECT request_id, cost_usd FROM gateway_usagerecord WHERE kind = 'request' AND request_id = ANY(%s)", ids
    )
    counts = Counter(r[0] for r in rows)
    missing = sorted(set(ids) - set(counts))
    twice = sorted(i for i, c in counts.items() if c > 1)
    assert not missing and not twice, f"missing {len(missing)} of {STREAMS}: {missing[:3]}; billed twice: {twice[:3]}"
    # Every reservation of the interrupted streams was settled, and the budget spent what the records say.
    ((spent, reserved_usd, reserved_tokens),) = cluster.query(
        "SELECT spent_usd, reserved_usd, reserved_tokens FROM gateway_budgetusage WHERE budget_id = %s",
        account.budgets[STREAM_BUDGET],
    )
    assert (reserved_usd, reserved_tokens) == (0, 0)
    records = cluster.query(
        "SELECT coalesce(sum(cost_usd), 0) FROM gateway_usagerecord WHERE kind = 'request' AND user_id = %s",
        account.user_id,
    )
    assert spent == records[0][0]
