"""Admission and accounting around one request: rate limits and budgets before, usage and cost after.

``Meter.admit()`` checks the key's and the user's rate limits and reserves on every budget that applies (either may
refuse with 429). ``Meter.finish()`` runs exactly once, from a ``finally:`` (normal end, upstream error, client
disconnect): it settles rate limits and budgets with the real usage, prices it, and queues the usage rows and the
transcript turn for the write-behind buffer. Nothing here writes to the database synchronously except the budget
row lock, and that only for requests a budget applies to.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from django.conf import settings

from gateway.accounting import TurnRow, UsageRow, usage_buffer
from gateway.budgets import Reservation, budget_reserve, budget_settle
from gateway.db import db_async
from gateway.lifecycle import settled
from gateway.metering_config import limits_for, prices
from gateway.metrics import record_request, record_stream_closed
from gateway.pricing import Price, cost_usd, price_match
from gateway.ratelimit import Decision, merge_decisions, rate_limiter
from gateway.upstream import RequestContext, UpstreamStream
from gateway.wire.errors import GatewayError, RateLimitError
from providers.routing import Route

logger = logging.getLogger(__name__)


def session_of(headers: Any, body: dict[str, Any]) -> str | None:
    """X-Claude-Code-Session-Id, else x-session-id, else metadata.user_id's session_id (claude-code-wire.md §2-3)."""
    for name in ("x-claude-code-session-id", "x-session-id"):
        value = headers.get(name) if headers is not None else None
        if value:
            return str(value)[:200]
    raw = (body.get("metadata") or {}).get("user_id")
    if isinstance(raw, str) and raw.startswith("{"):
        try:
            session = orjson.loads(raw).get("session_id")
        except (orjson.JSONDecodeError, AttributeError):
            return None
        return str(session)[:200] if session else None
    return None


# What ``Meter`` reads from the request body: billing's fields and the transcript's messages.
_METERED_FIELDS = ("model", "stream", "max_tokens", "messages")


@dataclass
class Meter:
    ctx: RequestContext
    body: dict[str, Any]
    headers: Any
    started: float = field(default_factory=time.monotonic)
    session: str | None = None
    reservations: list[Reservation] = field(default_factory=list)
    decision: Decision | None = None
    warnings: list[str] = field(default_factory=list)
    finished: bool = False
    reserved_input: int = 0
    admitted: list[tuple[str, Any]] = field(default_factory=list)  # rate-limit subjects that took this request
    # The server-side tool loop (gateway/toolloop.py) meters each model call of one request with its own Meter:
    # step N > 1 gets its own record ids (same request_id), so the records sum to what the upstreams reported.
    step: int = 1
    # Store this request's Turn: False when the workspace policy says so (LYNKR_TRANSCRIPTS=false still wins),
    # and for the tool loop's internal steps (the last step's turn holds their messages).
    transcript: bool = True

    def __post_init__(self) -> None:
        self.session = session_of(self.headers, self.body)
        # Keep only what billing and the transcript read: a stream stays open for minutes, and the rest of a Claude
        # Code body (tools, system: most of its ~77 KB, ~170 KB parsed) would stay alive with it. The messages stay
        # even without a transcript: the tool loop decides on its last step (gateway/toolloop.py).
        self.body = {name: self.body[name] for name in _METERED_FIELDS if name in self.body}

    async def admit(self, route: Route | None = None) -> None:
        """Rate limits, then budgets (priced for the planned first target). Raises 429; takes nothing if it does."""
        key = self.ctx.key
        key_limits, user_limits = await limits_for(key)
        estimate = self.ctx.inbound.input_estimate
        decisions = []
        limiter = rate_limiter()
        admitted: list[tuple[str, Any]] = []
        for subject, limits in ((f"key:{key.id}", key_limits), (f"user:{key.user_id}", user_limits)):
            if limits.unlimited:
                continue
            decision = await limiter.admit(subject, limits, input_tokens=estimate)
            decisions.append(decision)
            if not decision.allowed:
                # Two subjects are two atomic admits: give back what an earlier one took.
                for taken_subject, taken_limits in admitted:
                    await limiter.release(taken_subject, taken_limits, input_tokens=estimate)
                break
            admitted.append((subject, limits))
        self.admitted = admitted
        if decisions:
            self.decision = merge_decisions(decisions)
            if not self.decision.allowed:
                headers = {**self.decision.headers, "retry-after": str(self.decision.retry_after)}
                self.admitted = []
                raise RateLimitError(f"rate limit exceeded: {self.decision.exceeded} per minute", headers=headers)
        self.reserved_input = estimate
        price = await self._price_for(route)
        output_reservation = min(int(self.body.get("max_tokens") or 0), settings.LYNKR_BUDGET_OUTPUT_RESERVATION)
        usd = cost_usd(price, input_tokens=estimate, output_tokens=output_reservation) or Decimal(0)
        try:
            self.reservations, self.warnings = await budget_reserve(key, usd=usd, tokens=estimate + output_reservation)
        except RateLimitError:
            # Refused by a budget: give the rate-limit takes back, the request never ran.
            for subject, limits in self.admitted:
                await limiter.release(subject, limits, input_tokens=estimate)
            self.admitted = []
            raise
        for warning in self.warnings:
            logger.warning("request_id=%s key=%s budget warning: %s", self.ctx.request_id, key.prefix, warning)

    async def _price_for(self, route: Route | None) -> Price | None:
        """The price of the planned first target (the client's model when nothing was planned)."""
        if route is None:
            return price_match(await prices(), provider_id=None, upstream_model=str(self.body.get("model", "")))
        return price_match(await prices(), provider_id=route.provider.id, upstream_model=route.upstream_model)

    def response_headers(self) -> dict[str, str]:
        headers = dict(self.decision.headers) if self.decision else {}
        if self.warnings:
            headers["x-lynkr-budget-warning"] = "; ".join(self.warnings)[:500]
        return headers

    async def finish(
        self,
        *,
        stream: UpstreamStream | None = None,
        message: dict[str, Any] | None = None,
        error: GatewayError | None = None,
        cache_hit: bool = False,
        cached_usage: dict[str, Any] | None = None,
    ) -> None:
        if self.finished:
            return
        self.finished = True
        try:
            await self._finish(stream, message, error, cache_hit, cached_usage)
        except Exception:  # accounting must never take the response down with it
            logger.exception("request_id=%s accounting failed", self.ctx.request_id)

    async def _finish(
        self,
        stream: UpstreamStream | None,
        message: dict[str, Any] | None,
        error: GatewayError | None,
        cache_hit: bool,
        cached_usage: dict[str, Any] | None,
    ) -> None:
        key = self.ctx.key
        if stream is not None:
            record_stream_closed()  # first, so a failure below cannot leave the gauge counting it
        usage: dict[str, Any] = dict(stream.usage) if stream is not None else {}
        if cache_hit:
            usage = {}
        input_tokens = int(usage.get("input_tokens") or 0)
        output_tokens = int(usage.get("output_tokens") or 0)
        cache_read = int(usage.get("cache_read_input_tokens") or 0)
        cache_write = int(usage.get("cache_creation_input_tokens") or 0)
        price = None
        if stream is not None:
            route = stream.route
            price = price_match(await prices(), provider_id=route.provider.id, upstream_model=route.upstream_model)
        cost = (
            Decimal(0)
            if cache_hit
            else cost_usd(
                price,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cache_read_tokens=cache_read,
                cache_write_tokens=cache_write,
            )
        )
        if stream is None and not cache_hit:
            cost = Decimal(0)  # nothing reached an upstream (or every attempt failed before answering)
        await budget_settle(self.reservations, usd=cost, tokens=input_tokens + output_tokens + cache_read + cache_write)
        limiter = rate_limiter()
        for subject, limits in self.admitted:
            await limiter.settle(
                subject, limits, output_tokens=output_tokens, input_correction=input_tokens - self.reserved_input
            )
        now = datetime.now(UTC)
        records = self.ctx.request_id if self.step <= 1 else f"{self.ctx.request_id}:step:{self.step}"
        status = error.status if error is not None else (200 if stream is None or stream.outcome == "ok" else 502)
        error_type = (
            error.error_type if error is not None else ("" if status == 200 else (stream.outcome if stream else ""))
        )
        rows = [
            UsageRow(
                record_id=f"{records}:request",
                kind="request",
                request_id=self.ctx.request_id,
                created_at=now,
                key_id=key.id or None,
                user_id=key.user_id or None,
                session=self.session,
                provider=stream.route.provider.name if stream else ("cache" if cache_hit else ""),
                upstream_model=stream.route.upstream_model if stream else "",
                client_model=str(self.body.get("model", "")),
                route_rule=stream.rule if stream else "",
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cache_read_tokens=cache_read,
                cache_write_tokens=cache_write,
                cost_usd=cost,
                latency_ms=int((time.monotonic() - self.started) * 1000),
                ttft_ms=stream.ttft_ms if stream else None,
                status=status,
                error_type=error_type,
                cache_hit=cache_hit,
                stream=bool(self.body.get("stream")),
            )
        ]
        for n, attempt in enumerate(self.ctx.attempts, 1):
            row = UsageRow(
                record_id=f"{records}:attempt:{n}",
                kind="attempt",
                request_id=self.ctx.request_id,
                created_at=now,
                key_id=key.id or None,
                user_id=key.user_id or None,
                session=self.session,
                provider=attempt.provider,
                upstream_model=attempt.upstream_model,
                client_model=str(self.body.get("model", "")),
                route_rule=attempt.rule,
                latency_ms=attempt.latency_ms,
                status=attempt.status,
                error_type=attempt.error_type,
                stream=bool(self.body.get("stream")),
            )
            if attempt.status == 200:  # the attempt that answered carries the usage; failed ones cost nothing known
                row.input_tokens, row.output_tokens = input_tokens, output_tokens
                row.cache_read_tokens, row.cache_write_tokens, row.cost_usd = cache_read, cache_write, cost
            rows.append(row)
        turn = None
        if self.transcript and self.session and key.user_id and settings.LYNKR_TRANSCRIPTS:
            turn = TurnRow(
                request_id=self.ctx.request_id,
                session=self.session,
                user_id=key.user_id,
                key_id=key.id or None,
                messages=list(self.body.get("messages") or []),
                response=message,
                created_at=now,
            )
        usage_buffer.add(rows, turn)
        request = rows[0]
        rejected = ""
        if error is not None and error.status == 429 and stream is None and not self.ctx.attempts:
            rejected = "rate_limit" if self.decision is not None and not self.decision.allowed else "budget"
        record_request(
            provider=request.provider,
            upstream_model=request.upstream_model,
            client_model=request.client_model,
            route_rule=request.route_rule,
            status=status,
            error_type=error_type,
            latency_ms=request.latency_ms,
            ttft_ms=request.ttft_ms,
            tokens={
                "input": input_tokens,
                "output": output_tokens,
                "cache_read": cache_read,
                "cache_write": cache_write,
            },
            cost=cost,
            cache="hit" if cache_hit else ("miss" if stream is not None and stream.recorded is not None else ""),
            rejected=rejected,
            attempts=tuple((a.provider, a.upstream_model, a.status, a.latency_ms) for a in self.ctx.attempts),
            buffer_depth=len(usage_buffer),
        )


async def usage_flush() -> int:
    """Write the buffered usage, after the requests still being billed (gateway/lifecycle.py settle_soon)."""
    await settled()
    return await db_async(usage_buffer.flush_sync)()
