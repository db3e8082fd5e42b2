"""What the gateway does, counted: Prometheus metrics (``lynkr_*``) and in-process aggregates for humans.

The pipeline and metering call the ``record_*`` functions below; each is a handful of dict and prometheus_client
operations (about a microsecond each), well inside the hot path's budget. The Prometheus side is exported by
``/metrics/prometheus`` (gateway/observability.py), across processes when ``PROMETHEUS_MULTIPROC_DIR`` is set
(prometheus_client's multiprocess mode: every process writes its values to files there, the scrape merges them).
The aggregates behind ``/metrics/observability`` are per process: latency percentiles are exact over a bounded ring
of the most recent requests (not estimated from histogram buckets).
"""

from __future__ import annotations

import threading
from collections import Counter as TallyCounter
from collections import deque
from decimal import Decimal
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from providers.resilience import CLOSED, HALF_OPEN, OPEN, BreakerState

# --- Prometheus ---------------------------------------------------------------------------------------------------

_REQUEST = ("provider", "upstream_model", "client_model", "route_rule")
# Seconds. An agent's turn runs from well under a second to many minutes (the CLI waits up to 600 s).
_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
_TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0)

REQUESTS = Counter("lynkr_requests", "Requests to /v1/messages, by outcome.", [*_REQUEST, "status"])
ERRORS = Counter("lynkr_errors", "Requests that ended in an error, by Anthropic error type.", [*_REQUEST, "error_type"])
REQUEST_DURATION = Histogram(
    "lynkr_request_duration_seconds", "Whole request, admission to last byte.", _REQUEST, buckets=_DURATION_BUCKETS
)
TTFT = Histogram(
    "lynkr_time_to_first_token_seconds", "Upstream send to first content event.", _REQUEST, buckets=_TTFT_BUCKETS
)
ATTEMPT_DURATION = Histogram(
    "lynkr_upstream_attempt_duration_seconds",
    "One upstream attempt, send to its first content event or its failure.",
    ["provider", "upstream_model", "status"],
    buckets=_DURATION_BUCKETS,
)
TOKENS = Counter("lynkr_tokens", "Tokens billed, by kind: input, output, cache_read, cache_write.", [*_REQUEST, "kind"])
COST = Counter("lynkr_cost_usd", "Cost of the requests in USD, at the configured prices.", _REQUEST)
CACHE = Counter("lynkr_response_cache", "Response-cache lookups of cacheable requests.", ["result"])
RETRIES = Counter("lynkr_retries", "Retries of the same upstream target.", ["provider", "upstream_model"])
FALLBACKS = Counter("lynkr_fallbacks", "Failovers away from a target, by reason.", ["provider", "reason"])
BREAKER = Gauge(
    "lynkr_circuit_breaker_state",
    "Circuit breaker per provider: 0 closed, 1 half-open, 2 open.",
    ["provider"],
    multiprocess_mode="mostrecent",
)
RATE_LIMITED = Counter("lynkr_rate_limit_rejections", "Requests refused by a rate limit (429).", ["client_model"])
BUDGET_REJECTED = Counter("lynkr_budget_rejections", "Requests refused by a budget (429).", ["client_model"])
ACTIVE_STREAMS = Gauge(
    "lynkr_active_streams", "Upstream answers open right now (streaming or being folded).", multiprocess_mode="livesum"
)
BUFFER_DEPTH = Gauge(
    "lynkr_usage_buffer_depth", "Usage records waiting in the write-behind buffer.", multiprocess_mode="livesum"
)

BREAKER_VALUES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}

# --- in-process aggregates (/metrics/observability) --------------------------------------------------------------

RESERVOIR_SIZE = 10_000


class Stats:
    """Totals since the process started, and the latencies of the most recent ``RESERVOIR_SIZE`` requests."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # appends are atomic; the lock only makes a snapshot consistent
        self.requests = 0
        self.errors = 0
        self.errors_by_type: TallyCounter[str] = TallyCounter()
        self.tokens: TallyCounter[str] = TallyCounter()
        self.cost = Decimal(0)
        self.cache: TallyCounter[str] = TallyCounter()
        self.providers: dict[str, TallyCounter[str]] = {}
        self.by_provider: TallyCounter[str] = TallyCounter()
        self.by_rule: TallyCounter[str] = TallyCounter()
        self.fallbacks: TallyCounter[str] = TallyCounter()
        self.fallback_reasons: TallyCounter[str] = TallyCounter()
        self.rejections: TallyCounter[str] = TallyCounter()
        self.latency_ms: deque[int] = deque(maxlen=RESERVOIR_SIZE)
        self.ttft_ms: deque[int] = deque(maxlen=RESERVOIR_SIZE)

    def provider(self, name: str) -> TallyCounter[str]:
        tally = self.providers.get(name)
        if tally is None:
            tally = self.providers.setdefault(name, TallyCounter())
        return tally


STATS = Stats()

# Kept for code that counts by free-form key (the pipeline did before the record_* functions).
COUNTERS: TallyCounter[tuple[str, ...]] = TallyCounter()


def count(*key: str) -> None:
    COUNTERS[key] += 1


# --- recording (hot path) -----------------------------------------------------------------------------------------

# Labelled children by metric and label values. prometheus_client's ``labels()`` validates and stringifies the values
# and takes the metric's lock on every call (~3 us, measured; ~7 calls a request); the child it returns is the same
# object every time, so it is looked up once. Bounded: past the bound it is emptied and refilled from the registry,
# which keeps every child anyway.
_CHILDREN_MAX = 10_000
_children: dict[tuple[object, tuple[str, ...]], Any] = {}


def _child(metric: Any, *values: str) -> Any:
    key = (metric, values)
    child = _children.get(key)
    if child is None:
        if len(_children) >= _CHILDREN_MAX:
            _children.clear()
        child = _children[key] = metric.labels(*values)
    return child


def record_breaker(provider: str, state: BreakerState | str) -> None:
    """A breaker's state as last seen (after a check, a success or a failure; and at every scrape)."""
    name = state if isinstance(state, str) else state.state
    _child(BREAKER, provider).set(BREAKER_VALUES.get(name, 0))


def record_attempt(provider: str, state: BreakerState) -> None:
    """An attempt passes the provider's breaker (closed or half-open)."""
    count("attempt", provider)
    record_breaker(provider, state)


def record_retry(provider: str, upstream_model: str) -> None:
    count("retry", provider)
    _child(RETRIES, provider, upstream_model).inc()
    STATS.provider(provider)["retries"] += 1


def record_fallback(provider: str, reason: str) -> None:
    """The pipeline leaves ``provider`` for the next target; ``reason`` is the status or "circuit_open"."""
    count("fallback", reason, provider)
    _child(FALLBACKS, provider, reason).inc()
    if reason == "circuit_open":
        record_breaker(provider, OPEN)
    STATS.fallbacks[provider] += 1
    STATS.fallback_reasons[reason] += 1


def record_stream_opened() -> None:
    ACTIVE_STREAMS.inc()


def record_stream_closed() -> None:
    ACTIVE_STREAMS.dec()


def record_request(
    *,
    provider: str,
    upstream_model: str,
    client_model: str,
    route_rule: str,
    status: int,
    error_type: str,
    latency_ms: int,
    ttft_ms: int | None,
    tokens: dict[str, int],
    cost: Decimal | None,
    cache: str = "",
    rejected: str = "",
    attempts: tuple[tuple[str, str, int, int], ...] = (),
    buffer_depth: int | None = None,
) -> None:
    """One finished request (from ``Meter._finish``).

    ``cache`` is "hit", "miss" or "" (not a cacheable lookup); ``rejected`` is "rate_limit", "budget" or "";
    ``attempts`` are (provider, upstream_model, status, latency_ms) of every upstream attempt it made."""
    labels = (provider, upstream_model, client_model, route_rule)
    _child(REQUESTS, *labels, str(status)).inc()
    if status >= 400:
        _child(ERRORS, *labels, error_type or "api_error").inc()
    _child(REQUEST_DURATION, *labels).observe(latency_ms / 1000)
    if ttft_ms is not None:
        _child(TTFT, *labels).observe(ttft_ms / 1000)
    for kind, value in tokens.items():
        if value:
            _child(TOKENS, *labels, kind).inc(value)
    if cost:
        _child(COST, *labels).inc(float(cost))
    if cache:
        _child(CACHE, cache).inc()
    if rejected == "rate_limit":
        _child(RATE_LIMITED, client_model).inc()
    elif rejected == "budget":
        _child(BUDGET_REJECTED, client_model).inc()
    for attempt_provider, attempt_model, attempt_status, attempt_ms in attempts:
        _child(ATTEMPT_DURATION, attempt_provider, attempt_model, str(attempt_status)).observe(attempt_ms / 1000)
    if buffer_depth is not None:
        BUFFER_DEPTH.set(buffer_depth)
    stats = STATS
    with stats.lock:
        stats.requests += 1
        if status >= 400:
            stats.errors += 1
            stats.errors_by_type[error_type or "api_error"] += 1
        stats.tokens.update(tokens)
        if cost:
            stats.cost += cost
        if cache:
            stats.cache[cache] += 1
        if rejected:
            stats.rejections[rejected] += 1
        if upstream_model:  # an upstream answered: where the router sent it
            stats.by_provider[provider] += 1
            stats.by_rule[route_rule or "(default)"] += 1
        for attempt_provider, _, attempt_status, _ in attempts:
            stats.provider(attempt_provider)["success" if attempt_status < 400 else "failure"] += 1
        stats.latency_ms.append(latency_ms)
        if ttft_ms is not None:
            stats.ttft_ms.append(ttft_ms)


# --- reading (scrape) ---------------------------------------------------------------------------------------------


def percentiles(values: list[int] | deque[int], qs: tuple[int, ...] = (50, 95, 99)) -> dict[str, int | None]:
    """Exact nearest-rank percentiles of ``values`` (None when there are none)."""
    ordered = sorted(values)
    if not ordered:
        return {f"p{q}": None for q in qs}
    n = len(ordered)
    return {f"p{q}": ordered[max(0, min(n - 1, -(-q * n // 100) - 1))] for q in qs}


def observability_snapshot() -> dict[str, Any]:
    stats = STATS
    with stats.lock:
        latency = list(stats.latency_ms)
        ttft = list(stats.ttft_ms)
        body: dict[str, Any] = {
            "requests": {
                "total": stats.requests,
                "errors": stats.errors,
                "error_rate": round(stats.errors / stats.requests, 6) if stats.requests else 0.0,
                "errors_by_type": dict(stats.errors_by_type),
                "rejections": {"rate_limit": stats.rejections["rate_limit"], "budget": stats.rejections["budget"]},
            },
            "tokens": {k: stats.tokens[k] for k in ("input", "output", "cache_read", "cache_write")},
            "cost_usd": str(stats.cost),
            "providers": {
                name: {k: tally[k] for k in ("success", "failure", "retries")}
                for name, tally in sorted(stats.providers.items())
            },
            "routing": {"by_provider": dict(stats.by_provider), "by_rule": dict(stats.by_rule)},
            "fallbacks": {
                "total": sum(stats.fallbacks.values()),
                "by_provider": dict(stats.fallbacks),
                "by_reason": dict(stats.fallback_reasons),
            },
            "cache": {"hits": stats.cache["hit"], "misses": stats.cache["miss"]},
        }
    body["latency_ms"] = {"samples": len(latency), **percentiles(latency)}
    body["ttft_ms"] = {"samples": len(ttft), **percentiles(ttft)}
    body["reservoir_size"] = RESERVOIR_SIZE
    return body
