"""Usage records, sessions and transcripts, written behind the request path.

Each request (and each upstream attempt) produces a ``UsageRow`` in a ``finally:`` so errors and disconnects are
billed too. Rows go into an in-process buffer flushed in batches (every ``LYNKR_USAGE_FLUSH_INTERVAL`` seconds or
``LYNKR_USAGE_FLUSH_BATCH`` rows) and at shutdown; writes are idempotent (``record_id`` is unique), so a retried
flush never bills twice. Sessions are upserted per (user, session id); a ``Turn`` stores only the messages that are
new since the session's previous turn, and the answer.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from operator import itemgetter
from typing import Any

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, QuerySet

from gateway.accounting_sql import rows_insert
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


def _sessions(rows: list[UsageRow], turns: list[TurnRow]) -> dict[tuple[int, str], int]:
    """The ids of the batch's sessions, created on first sight: one read for those that exist, then one upsert per
    new one."""
    first: dict[tuple[int, str], datetime] = {}
    key: dict[tuple[int, str], int | None] = {}
    wanted: set[tuple[int, str]] = set()
    for r in rows:
        if r.session and r.user_id:
            name = (r.user_id, r.session)
            first[name] = min(first.get(name, r.created_at), r.created_at)
            key.setdefault(name, r.key_id)  # the first row's key, as the batch lists them
            if r.kind == "request":
                wanted.add(name)
    for t in turns:
        name = (t.user_id, t.session)
        first[name] = min(first.get(name, t.created_at), t.created_at)
        wanted.add(name)
    if not wanted:
        return {}
    found = {
        (user_id, external): pk
        for user_id, external, pk in Session.objects.filter(
            user_id__in={u for u, _ in wanted}, external_id__in={e for _, e in wanted}
        ).values_list("user_id", "external_id", "pk")
        if (user_id, external) in wanted
    }
    for user_id, external in wanted - found.keys():
        name = (user_id, external)
        session, _ = Session.objects.get_or_create(  # another process may create it first: get_or_create copes
            user_id=user_id,
            external_id=external,
            defaults={"api_key_id": key.get(name), "started_at": first[name], "last_seen_at": first[name]},
        )
        found[name] = session.pk
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


# The columns of a usage record and of a turn, in the order of the tuples usage_write builds (rows_insert checks
# that they are all of the model's).
_RECORD_COLUMNS = (
    "record_id",
    "kind",
    "request_id",
    "created_at",
    "api_key_id",
    "user_id",
    "session_id",
    "provider",
    "upstream_model",
    "client_model",
    "route_rule",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_usd",
    "latency_ms",
    "ttft_ms",
    "status",
    "error_type",
    "cache_hit",
    "stream",
)
_TURN_COLUMNS = ("session_id", "request_id", "created_at", "new_messages", "response", "message_count", "history_hash")


@transaction.atomic
def usage_write(*, rows: list[UsageRow], turns: list[TurnRow]) -> None:
    """Write one flush. The work is per flush, not per row (it shares a database thread, and the GIL, with the event
    loop): a few queries per flush and per session whatever the number of rows, each turn's history hashed once, and
    rows inserted as tuples (no model instance, no ORM compiler: gateway/accounting_sql.py)."""
    turns = _drop_dangling(rows, turns)
    sessions = _sessions(rows, turns)
    records: list[tuple[Any, ...]] = []
    counted: list[tuple[UsageRow, int]] = []  # the requests with a session: the rows that move its counters
    for r in rows:
        session_id = sessions.get((r.user_id or 0, r.session or ""))
        records.append(
            (
                r.record_id,
                r.kind,
                r.request_id,
                r.created_at,
                r.key_id,
                r.user_id,
                session_id,
                r.provider,
                r.upstream_model,
                r.client_model,
                r.route_rule,
                r.input_tokens,
                r.output_tokens,
                r.cache_read_tokens,
                r.cache_write_tokens,
                r.cost_usd,
                r.latency_ms,
                r.ttft_ms,
                r.status,
                r.error_type,
                r.cache_hit,
                r.stream,
            )
        )
        if r.kind == "request" and session_id is not None:
            counted.append((r, session_id))
    # Counters move only for records not written before (a retried flush). Only the counted ones need looking up:
    # the insert skips every record already there, whatever its kind.
    existing = set(
        UsageRecord.objects.filter(record_id__in=[r.record_id for r, _ in counted]).values_list("record_id", flat=True)
    )
    rows_insert(model=UsageRecord, columns=_RECORD_COLUMNS, rows=records)
    _count_requests([(r, session_id) for r, session_id in counted if r.record_id not in existing])
    _write_turns(turns, sessions)


# Session.cost_usd is numeric(14, 6). PostgreSQL rounds every assignment to it (half away from zero), so the
# per-row "cost_usd + x" updates this one replaces rounded each request's cost (often 7-8 decimals: a price per
# million tokens times a token count) before adding it; SQLite has no fixed-point type and keeps a float. Rounding
# each cost the way the backend did keeps the counter as it was, and independent of how rows fall into flushes.
_SESSION_COST_STEP = Decimal("0.000001")


def _count_requests(fresh: list[tuple[UsageRow, int]]) -> None:
    """Add the flush's new requests (with their session's id) to their sessions: one UPDATE per session, relative
    (F()) so that writers in other processes add up; ``last_seen_at`` is the latest request of the flush, as the
    per-row updates left it."""
    rounded = connection.vendor != "sqlite"
    counts: dict[int, tuple[int, Decimal, datetime]] = {}
    for record, session_id in fresh:
        cost = record.cost_usd or Decimal(0)
        if rounded:
            cost = cost.quantize(_SESSION_COST_STEP, rounding=ROUND_HALF_UP)
        requests, total, seen = counts.get(session_id, (0, Decimal(0), record.created_at))
        counts[session_id] = (requests + 1, total + cost, max(seen, record.created_at))
    for session_id, (requests, total, seen) in counts.items():
        Session.objects.filter(pk=session_id).update(
            requests=F("requests") + requests, cost_usd=F("cost_usd") + total, last_seen_at=seen
        )


# How many earlier turns of its session a new turn is compared with, the longest histories first.
_CANDIDATES = 50


def _write_turns(turns: list[TurnRow], sessions: dict[tuple[int, str], int]) -> None:
    """Claude Code resends the whole history each turn: store only what is new since the turn whose history this one
    continues (a title call or a subagent in the same session is another conversation). Turns are taken in time
    order, each compared with the session's earlier turns: those in the database and those earlier in this flush."""
    known = set(Turn.objects.filter(request_id__in={t.request_id for t in turns}).values_list("request_id", flat=True))
    new: list[TurnRow] = []
    longest: dict[int, int] = {}
    for turn in sorted(turns, key=lambda t: t.created_at):
        if turn.request_id in known:  # written by an earlier flush (this one is a retry) or listed twice
            continue
        known.add(turn.request_id)
        new.append(turn)
        session_id = sessions[(turn.user_id, turn.session)]
        longest[session_id] = max(longest.get(session_id, 0), len(turn.messages))
    histories: dict[int, _History] = {}
    objects: list[tuple[Any, ...]] = []
    for turn in new:
        session_id = sessions[(turn.user_id, turn.session)]
        history = histories.get(session_id)
        if history is None:
            history = histories[session_id] = _History(session_id, longest[session_id])
        count = len(turn.messages)
        candidates = history.candidates(count)
        digests = _prefix_hashes(turn.messages, {c for c, digest in candidates if digest} | {count})
        previous = next((c for c, digest in candidates if digest and digests[c] == digest), 0)
        history.add(count, digests[count])
        objects.append(
            (
                session_id,
                turn.request_id,
                turn.created_at,
                turn.messages[previous:],
                turn.response,
                count,
                digests[count],
            )
        )
    # request_id is unique: a turn another process wrote meanwhile is skipped, never doubled.
    rows_insert(model=Turn, columns=_TURN_COLUMNS, rows=objects)


class _History:
    """The earlier turns of one session a new turn may continue, as (message count, history hash), longest first and
    newest first among equals: the database's, read once per flush, then this flush's own as they are written."""

    def __init__(self, session_id: int, longest: int) -> None:
        self._session_id = session_id
        self._stored = {longest: self._read(longest)}
        # Fewer rows than asked for: all of the session's turns up to the flush's longest history were read.
        self._complete = len(self._stored[longest]) < _CANDIDATES
        self._longest = longest
        # This flush's turns, kept in the order of comparison (longest first, newest first among equals) with their
        # negated counts beside them for bisect: a turn takes its first _CANDIDATES instead of sorting them all, which
        # made a flush quadratic in its turns per session.
        self._flushed: list[tuple[int, str]] = []
        self._flushed_keys: list[int] = []

    def _read(self, count: int) -> list[tuple[int, str]]:
        return [(int(c), digest) for c, digest in history_query(self._session_id, count)]

    def candidates(self, count: int) -> list[tuple[int, str]]:
        """The ``_CANDIDATES`` turns a history of ``count`` messages is compared with, in the order of comparison."""
        stored = [c for c in self._stored[self._longest] if c[0] <= count]
        if len(stored) < _CANDIDATES and not self._complete:
            # The rows read for the flush's longest history hide some of this shorter one's (a short side call in a
            # long session): read its own, once per length.
            if count not in self._stored:
                self._stored[count] = self._read(count)
            stored = self._stored[count]
        # This flush's turns are newer (larger ids once written) than the stored ones of the same length: listed
        # first, the sort keeps them first (it is stable, reversed or not).
        start = bisect.bisect_left(self._flushed_keys, -count)
        flushed = self._flushed[start : start + _CANDIDATES]
        return sorted(flushed + stored, key=itemgetter(0), reverse=True)[:_CANDIDATES]

    def add(self, count: int, digest: str) -> None:
        at = bisect.bisect_left(self._flushed_keys, -count)  # before the older turns of the same length
        self._flushed.insert(at, (count, digest))
        self._flushed_keys.insert(at, -count)


def history_query(session_id: int, count: int) -> QuerySet[Turn, tuple[int, str]]:
    """A session's latest ``_CANDIDATES`` turns of at most ``count`` messages, longest first, newest first among equals
    (an index search: Turn's ``turn_session_history``)."""
    return (
        Turn.objects.filter(session_id=session_id, message_count__lte=count)
        .order_by("-message_count", "-id")
        .values_list("message_count", "history_hash")[:_CANDIDATES]
    )


def history_hash(messages: list[Any], count: int) -> str:
    """What ``Turn.history_hash`` stores; later turns are matched against it, so its format never changes."""
    return hashlib.sha256(orjson.dumps(messages[:count], option=orjson.OPT_SORT_KEYS)).hexdigest()


def _prefix_hashes(messages: list[Any], counts: set[int]) -> dict[int, str]:
    """``history_hash(messages, c)`` for each c in ``counts`` (all <= len(messages)), serialising each message once
    and hashing the longest prefix once: orjson's compact array is "[" + the items joined by "," + "]", so every
    shorter prefix's bytes start the longer one's, and a copy of the running hash finishes each."""
    digests: dict[int, str] = {}
    last = max(counts)
    running = hashlib.sha256(b"[")
    for index in range(last + 1):
        if index in counts:
            prefix = running.copy()
            prefix.update(b"]")
            digests[index] = prefix.hexdigest()
        if index < last:
            if index:
                running.update(b",")
            running.update(orjson.dumps(messages[index], option=orjson.OPT_SORT_KEYS))
    return digests
