"""Usage records, sessions and transcripts, written behind the request path.

Each request (and each upstream attempt) produces a ``UsageRow`` in a ``finally:`` so errors and disconnects are
billed too. Rows go into an in-process buffer flushed in batches (every ``LYNKR_USAGE_FLUSH_INTERVAL`` seconds or
``LYNKR_USAGE_FLUSH_BATCH`` rows) and at shutdown; writes are idempotent (``record_id`` is unique), so a retried
flush never bills twice. Sessions are upserted per (user, session id); a ``Turn`` stores only the messages that are
new since the session's previous turn, and the answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from django.conf import settings
from django.db import transaction
from django.db.models import F

from gateway.db import db_async
from gateway.models import Session, Turn, UsageRecord

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class UsageRow:
    record_id: str
    kind: str  # "request" | "attempt"
    request_id: str
    created_at: datetime
    key_id: int | None
    user_id: int | None
    session: str | None
    provider: str = ""
    upstream_model: str = ""
    client_model: str = ""
    route_rule: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: Decimal | None = None
    latency_ms: int = 0
    ttft_ms: int | None = None
    status: int = 200
    error_type: str = ""
    cache_hit: bool = False
    stream: bool = False


@dataclass(slots=True)
class TurnRow:
    request_id: str
    session: str
    user_id: int
    key_id: int | None
    messages: list[Any]
    response: dict[str, Any] | None
    created_at: datetime
    extra: dict[str, Any] = field(default_factory=dict)


class UsageBuffer:
    """Rows waiting to be written. Thread-safe append; one flusher task per event loop."""

    def __init__(self) -> None:
        self._rows: list[UsageRow] = []
        self._turns: list[TurnRow] = []
        self._lock = threading.Lock()
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._kicks: set[asyncio.Task[int]] = set()
        self.last_flush = time.monotonic()  # of the last successful flush (readiness: a stuck buffer)
        self.flushed = 0

    def add(self, rows: list[UsageRow], turn: TurnRow | None = None) -> None:
        with self._lock:
            self._rows.extend(rows)
            if turn is not None:
                self._turns.append(turn)
            size = len(self._rows)
        self._ensure_task()
        if size >= settings.LYNKR_USAGE_FLUSH_BATCH:
            self._kick()

    def clear(self) -> None:
        """Forget everything buffered (tests; never in a server)."""
        with self._lock:
            self._rows, self._turns = [], []

    def __len__(self) -> int:
        return len(self._rows) + len(self._turns)

    def flush_sync(self) -> int:
        with self._lock:
            rows, self._rows = self._rows, []
            turns, self._turns = self._turns, []
        if not rows and not turns:
            self.last_flush = time.monotonic()
            return 0
        try:
            usage_write(rows=rows, turns=turns)
        except Exception:
            logger.exception("usage flush of %d rows failed; kept for the next round", len(rows))
            with self._lock:
                self._rows[:0] = rows
                self._turns[:0] = turns
            return 0
        self.flushed += len(rows)
        self.last_flush = time.monotonic()
        return len(rows)

    async def flush(self) -> int:
        return await db_async(self.flush_sync)()

    def _ensure_task(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = self._tasks.get(id(loop))
        if task is None or task.done():
            self._tasks[id(loop)] = loop.create_task(self._run(), name="lynkr-usage-flusher")

    def _kick(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self.flush())
        self._kicks.add(task)  # keep a reference until done (asyncio holds tasks weakly)
        task.add_done_callback(self._kicks.discard)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(settings.LYNKR_USAGE_FLUSH_INTERVAL)
            if len(self):
                await self.flush()


usage_buffer = UsageBuffer()


def _sessions(rows: list[UsageRow], turns: list[TurnRow]) -> dict[tuple[int, str], Session]:
    wanted = {(r.user_id, r.session) for r in rows if r.session and r.user_id and r.kind == "request"}
    wanted |= {(t.user_id, t.session) for t in turns}
    found: dict[tuple[int, str], Session] = {}
    for user_id, external in wanted:
        mine = [r for r in rows if r.session == external and r.user_id == user_id]
        theirs = [t for t in turns if t.session == external and t.user_id == user_id]
        first = min([r.created_at for r in mine] + [t.created_at for t in theirs])
        key = mine[0].key_id if mine else None
        session, _ = Session.objects.get_or_create(
            user_id=user_id,
            external_id=external,
            defaults={"api_key_id": key, "started_at": first, "last_seen_at": first},
        )
        found[(user_id, external)] = session
    return found


def _drop_dangling(rows: list[UsageRow], turns: list[TurnRow]) -> list[TurnRow]:
    """A key or user deleted while its usage waited in the buffer: keep the record, without the reference."""
    from django.contrib.auth import get_user_model

    from gateway.models import ApiKey

    users = set(get_user_model().objects.filter(id__in={r.user_id for r in rows} | {t.user_id for t in turns})
                .values_list("id", flat=True))  # fmt: skip
    keys = set(ApiKey.objects.filter(id__in={r.key_id for r in rows}).values_list("id", flat=True))
    for row in rows:
        if row.user_id not in users:
            row.user_id, row.session = None, None
        if row.key_id not in keys:
            row.key_id = None
    for turn in turns:
        if turn.key_id not in keys:
            turn.key_id = None
    return [t for t in turns if t.user_id in users]


@transaction.atomic
def usage_write(*, rows: list[UsageRow], turns: list[TurnRow]) -> None:
    turns = _drop_dangling(rows, turns)
    sessions = _sessions(rows, turns)
    records = [
        UsageRecord(
            record_id=r.record_id,
            kind=r.kind,
            request_id=r.request_id,
            created_at=r.created_at,
            api_key_id=r.key_id,
            user_id=r.user_id,
            session=sessions.get((r.user_id or 0, r.session or "")),
            provider=r.provider,
            upstream_model=r.upstream_model,
            client_model=r.client_model,
            route_rule=r.route_rule,
            input_tokens=r.input_tokens,
            output_tokens=r.output_tokens,
            cache_read_tokens=r.cache_read_tokens,
            cache_write_tokens=r.cache_write_tokens,
            cost_usd=r.cost_usd,
            latency_ms=r.latency_ms,
            ttft_ms=r.ttft_ms,
            status=r.status,
            error_type=r.error_type,
            cache_hit=r.cache_hit,
            stream=r.stream,
        )
        for r in rows
    ]
    existing = set(
        UsageRecord.objects.filter(record_id__in=[r.record_id for r in records]).values_list("record_id", flat=True)
    )
    fresh = [r for r in records if r.record_id not in existing]
    UsageRecord.objects.bulk_create(fresh, ignore_conflicts=True)
    for record in fresh:
        if record.kind == "request" and record.session is not None:
            Session.objects.filter(pk=record.session.pk).update(
                requests=F("requests") + 1,
                cost_usd=F("cost_usd") + (record.cost_usd or 0),
                last_seen_at=record.created_at,
            )
    for turn in turns:
        session = sessions[(turn.user_id, turn.session)]
        count = len(turn.messages)
        previous = _previous_count(session, turn.messages)
        # Claude Code resends the whole history each turn: store only what is new since the turn whose history this
        # one continues (a title call or a subagent in the same session is another conversation).
        Turn.objects.get_or_create(
            request_id=turn.request_id,
            defaults={"session": session, "created_at": turn.created_at, "new_messages": turn.messages[previous:],
                      "response": turn.response, "message_count": count,
                      "history_hash": history_hash(turn.messages, count)},
        )  # fmt: skip


def history_hash(messages: list[Any], count: int) -> str:
    return hashlib.sha256(orjson.dumps(messages[:count], option=orjson.OPT_SORT_KEYS)).hexdigest()


def _previous_count(session: Session, messages: list[Any]) -> int:
    """The longest earlier history of this session that ``messages`` starts with (0 when none)."""
    candidates = (
        Turn.objects.filter(session=session, message_count__lte=len(messages))
        .order_by("-message_count", "-id")
        .values_list("message_count", "history_hash")[:50]
    )
    for count, digest in candidates:
        if digest and history_hash(messages, count) == digest:
            return int(count)
    return 0
