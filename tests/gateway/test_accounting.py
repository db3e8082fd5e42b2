"""The write-behind usage buffer and ``usage_write``: idempotent batches, sessions, transcripts (turns)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import OperationalError

from gateway import accounting
from gateway.accounting import TurnRow, UsageRow, usage_buffer, usage_write
from gateway.models import ApiKey, Session, Turn, UsageRecord
from gateway.services import apikey_create

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _discard() -> None:
    usage_buffer.clear()


@pytest.fixture(autouse=True)
def _empty_buffer(settings: Any) -> Iterator[None]:
    settings.LYNKR_USAGE_FLUSH_INTERVAL = 3600
    _discard()
    yield
    _discard()


@pytest.fixture
def owner() -> User:
    return User.objects.create_user(username="acct", password="x" * 12)


@pytest.fixture
def key_id(owner: User) -> int:
    return ApiKey.objects.get(prefix=apikey_create(user=owner).prefix).pk


def row(
    request_id: str,
    user_id: int | None,
    key_id: int | None,
    *,
    kind: str = "request",
    attempt: int = 1,
    session: str | None = None,
    at: datetime = T0,
    **fields: Any,
) -> UsageRow:
    record_id = f"{request_id}:request" if kind == "request" else f"{request_id}:attempt:{attempt}"
    return UsageRow(record_id, kind, request_id, at, key_id, user_id, session, **fields)


def turn(request_id: str, user_id: int, session: str, messages: list[Any], *, at: datetime = T0) -> TurnRow:
    return TurnRow(request_id, session, user_id, None, messages, {"role": "assistant", "content": []}, at)


def msgs(n: int) -> list[dict[str, str]]:
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": f"m{i}"} for i in range(n)]


# --- idempotency ------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_usage_write_twice_with_the_same_rows_writes_each_record_once(owner: User, key_id: int) -> None:
    rows = [
        row("r1", owner.pk, key_id, session="s", cost_usd=Decimal("0.5"), input_tokens=10),
        row("r1", owner.pk, key_id, kind="attempt", session="s", cost_usd=Decimal("0.5")),
        row("r2", owner.pk, key_id, session="s", cost_usd=None),
    ]
    turns = [turn("r1", owner.pk, "s", msgs(1)), turn("r2", owner.pk, "s", msgs(3))]
    usage_write(rows=rows, turns=turns)
    usage_write(rows=rows, turns=turns)  # a retried flush
    assert sorted(UsageRecord.objects.values_list("record_id", flat=True)) == [
        "r1:attempt:1",
        "r1:request",
        "r2:request",
    ]
    session = Session.objects.get()
    # Counters move only for records that were new: a retried flush does not bill the session twice.
    assert session.requests == 2 and session.cost_usd == Decimal("0.5")
    assert Turn.objects.count() == 2


@pytest.mark.django_db
def test_a_batch_mixing_old_and_new_rows_writes_only_the_new(owner: User, key_id: int) -> None:
    usage_write(rows=[row("a", owner.pk, key_id, session="s")], turns=[])
    usage_write(rows=[row("a", owner.pk, key_id, session="s"), row("b", owner.pk, key_id, session="s")], turns=[])
    assert UsageRecord.objects.count() == 2
    assert Session.objects.get().requests == 2


@pytest.mark.django_db
def test_record_id_is_unique_in_the_database(owner: User, key_id: int) -> None:
    from django.db import IntegrityError, transaction

    usage_write(rows=[row("dup", owner.pk, key_id)], turns=[])
    with pytest.raises(IntegrityError), transaction.atomic():
        UsageRecord.objects.create(record_id="dup:request", kind="request", request_id="dup")


@pytest.mark.django_db
def test_flush_twice_never_duplicates(owner: User, key_id: int) -> None:
    usage_buffer.add([row("f1", owner.pk, key_id), row("f1", owner.pk, key_id, kind="attempt")])
    assert len(usage_buffer) == 2
    assert usage_buffer.flush_sync() == 2
    assert usage_buffer.flush_sync() == 0
    assert len(usage_buffer) == 0
    usage_buffer.add([row("f1", owner.pk, key_id)])  # the same row queued again (e.g. re-sent after a crash)
    usage_buffer.flush_sync()
    assert UsageRecord.objects.count() == 2


@pytest.mark.django_db
def test_a_failed_flush_keeps_its_rows_for_the_next_round(
    owner: User, key_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def down(*, rows: list[UsageRow], turns: list[TurnRow]) -> None:
        calls.append(len(rows))
        raise OperationalError("database is away")

    usage_buffer.add([row("k1", owner.pk, key_id)], turn("k1", owner.pk, "s", msgs(1)))
    monkeypatch.setattr(accounting, "usage_write", down)
    assert usage_buffer.flush_sync() == 0
    assert len(usage_buffer) == 2  # the row and the turn are still queued
    usage_buffer.add([row("k2", owner.pk, key_id)])
    monkeypatch.undo()
    assert usage_buffer.flush_sync() == 2
    assert calls == [1]
    assert sorted(UsageRecord.objects.values_list("request_id", flat=True)) == ["k1", "k2"]
    assert Turn.objects.get().request_id == "k1"


@pytest.mark.django_db
def test_rows_added_from_many_threads_are_all_written_once(owner: User, key_id: int) -> None:
    def worker(n: int) -> None:
        for i in range(50):
            usage_buffer.add([row(f"t{n}-{i}", owner.pk, key_id)])

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert usage_buffer.flush_sync() == 200
    assert UsageRecord.objects.count() == 200


@pytest.mark.django_db(transaction=True)
def test_a_deleted_key_does_not_block_the_rest_of_the_usage(owner: User, key_id: int) -> None:
    """A key (or its user) deleted between a request and the flush must not poison the buffer for good."""
    doomed_user = User.objects.create_user(username="doomed", password="x" * 12)
    doomed_key = ApiKey.objects.get(prefix=apikey_create(user=doomed_user).prefix).pk
    usage_buffer.add([row("gone", doomed_user.pk, doomed_key, session="s")])
    usage_buffer.add([row("fine", owner.pk, key_id)])
    doomed_user.delete()  # admin removes the user (and the key) while their last request is still buffered
    usage_buffer.flush_sync()
    usage_buffer.add([row("later", owner.pk, key_id)])
    usage_buffer.flush_sync()
    assert set(UsageRecord.objects.values_list("request_id", flat=True)) == {"gone", "fine", "later"}
    assert len(usage_buffer) == 0
    gone = UsageRecord.objects.get(request_id="gone")
    assert (gone.api_key_id, gone.user_id, gone.session_id) == (None, None, None)  # billed, reference dropped
    assert not Session.objects.exists()


# --- sessions ---------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_sessions_are_per_user_and_external_id(owner: User, key_id: int) -> None:
    other = User.objects.create_user(username="other", password="x" * 12)
    other_key = ApiKey.objects.get(prefix=apikey_create(user=other).prefix).pk
    usage_write(
        rows=[
            row("o1", owner.pk, key_id, session="same-id", cost_usd=Decimal(1)),
            row("x1", other.pk, other_key, session="same-id", cost_usd=Decimal(2)),
            row("o2", owner.pk, key_id, session="another", cost_usd=Decimal(4)),
        ],
        turns=[],
    )
    mine = Session.objects.get(user=owner, external_id="same-id")
    theirs = Session.objects.get(user=other, external_id="same-id")
    assert mine.pk != theirs.pk
    assert (mine.api_key_id, mine.requests, mine.cost_usd) == (key_id, 1, Decimal(1))
    assert (theirs.api_key_id, theirs.requests, theirs.cost_usd) == (other_key, 1, Decimal(2))
    assert UsageRecord.objects.get(request_id="x1").session_id == theirs.pk
    assert Session.objects.filter(user=owner).count() == 2


@pytest.mark.django_db
def test_attempt_rows_do_not_count_as_session_requests(owner: User, key_id: int) -> None:
    usage_write(
        rows=[
            row("a", owner.pk, key_id, session="s", cost_usd=Decimal(1)),
            row("a", owner.pk, key_id, kind="attempt", attempt=1, session="s", cost_usd=None),
            row("a", owner.pk, key_id, kind="attempt", attempt=2, session="s", cost_usd=Decimal(1)),
        ],
        turns=[],
    )
    session = Session.objects.get()
    assert (session.requests, session.cost_usd) == (1, Decimal(1))
    assert UsageRecord.objects.filter(session=session).count() == 3


@pytest.mark.django_db
def test_unknown_cost_adds_nothing_to_the_session_but_counts_the_request(owner: User, key_id: int) -> None:
    usage_write(rows=[row("u", owner.pk, key_id, session="s", cost_usd=None)], turns=[])
    session = Session.objects.get()
    assert (session.requests, session.cost_usd) == (1, 0)
    assert UsageRecord.objects.get().cost_usd is None  # NULL in the database, not 0


@pytest.mark.django_db
def test_last_seen_follows_the_latest_request(owner: User, key_id: int) -> None:
    usage_write(rows=[row("1", owner.pk, key_id, session="s", at=T0)], turns=[])
    usage_write(rows=[row("2", owner.pk, key_id, session="s", at=T0 + timedelta(minutes=5))], turns=[])
    assert Session.objects.get().last_seen_at == T0 + timedelta(minutes=5)


@pytest.mark.django_db
def test_session_started_at_is_the_first_requests_time(owner: User, key_id: int) -> None:
    hour_ago = datetime.now(UTC) - timedelta(hours=1)  # the database was away for an hour; the rows waited
    usage_write(rows=[row("late", owner.pk, key_id, session="s", at=hour_ago)], turns=[])
    session = Session.objects.get()
    assert session.started_at <= session.last_seen_at
    assert session.started_at == hour_ago


# --- transcripts ------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_turns_store_only_what_is_new(owner: User, key_id: int) -> None:
    usage_write(rows=[row("t1", owner.pk, key_id, session="s")], turns=[turn("t1", owner.pk, "s", msgs(1))])
    usage_write(
        rows=[row("t2", owner.pk, key_id, session="s", at=T0 + timedelta(seconds=1))],
        turns=[turn("t2", owner.pk, "s", msgs(3), at=T0 + timedelta(seconds=1))],
    )
    usage_write(rows=[], turns=[turn("t3", owner.pk, "s", msgs(3), at=T0 + timedelta(seconds=2))])  # resent as is
    first, second, third = Turn.objects.order_by("created_at")
    assert first.new_messages == msgs(1) and first.message_count == 1
    assert second.new_messages == msgs(3)[1:] and second.message_count == 3
    assert third.new_messages == [] and third.message_count == 3
    assert first.response == {"role": "assistant", "content": []}


@pytest.mark.django_db
def test_a_shorter_history_after_compaction_is_stored_whole(owner: User) -> None:
    usage_write(rows=[], turns=[turn("c1", owner.pk, "s", msgs(7))])
    summary = [{"role": "user", "content": "summary"}]
    usage_write(rows=[], turns=[turn("c2", owner.pk, "s", summary, at=T0 + timedelta(seconds=1))])
    assert Turn.objects.get(request_id="c2").new_messages == summary


@pytest.mark.django_db
def test_turns_of_two_sessions_do_not_mix(owner: User) -> None:
    usage_write(rows=[], turns=[turn("p1", owner.pk, "one", msgs(5)), turn("q1", owner.pk, "two", msgs(1))])
    usage_write(rows=[], turns=[turn("q2", owner.pk, "two", msgs(3), at=T0 + timedelta(seconds=1))])
    assert Turn.objects.get(request_id="q2").new_messages == msgs(3)[1:]  # counted from session "two" only
    assert Session.objects.count() == 2


@pytest.mark.django_db
def test_a_parallel_conversation_in_the_session_does_not_eat_the_main_turns_messages(owner: User) -> None:
    main = msgs(4)
    subagent = [{"role": "user", "content": f"subtask {i}"} for i in range(6)]
    usage_write(rows=[], turns=[turn("main-1", owner.pk, "s", main)])
    usage_write(rows=[], turns=[turn("sub-1", owner.pk, "s", subagent, at=T0 + timedelta(seconds=1))])
    follow_up = [*main, {"role": "assistant", "content": "a4"}, {"role": "user", "content": "u5"}]
    usage_write(rows=[], turns=[turn("main-2", owner.pk, "s", follow_up, at=T0 + timedelta(seconds=2))])
    assert Turn.objects.get(request_id="main-2").new_messages == follow_up[4:]


@pytest.mark.django_db
def test_a_turn_is_written_once(owner: User) -> None:
    usage_write(rows=[], turns=[turn("once", owner.pk, "s", msgs(1))])
    usage_write(rows=[], turns=[turn("once", owner.pk, "s", msgs(1))])
    assert Turn.objects.count() == 1


@pytest.mark.django_db
def test_a_batch_is_all_or_nothing(owner: User, key_id: int, monkeypatch: pytest.MonkeyPatch) -> None:
    insert = accounting.rows_insert

    def broken(*, model: Any, **kwargs: Any) -> None:
        if model is Turn:  # the last write of the flush: the usage records and the session are in by then
            raise OperationalError("disk full")
        insert(model=model, **kwargs)

    monkeypatch.setattr(accounting, "rows_insert", broken)
    usage_buffer.add([row("atomic", owner.pk, key_id, session="s")], turn("atomic", owner.pk, "s", msgs(1)))
    assert usage_buffer.flush_sync() == 0
    assert UsageRecord.objects.count() == 0 and Session.objects.count() == 0  # rolled back with the turn
    monkeypatch.undo()
    assert usage_buffer.flush_sync() == 1
    assert UsageRecord.objects.count() == 1 and Turn.objects.count() == 1


# --- the async side ---------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_async_flush_and_batch_kick(owner: User, key_id: int, settings: Any) -> None:
    import asyncio

    from asgiref.sync import sync_to_async

    settings.LYNKR_USAGE_FLUSH_BATCH = 3
    usage_buffer.add([row("b1", owner.pk, key_id), row("b2", owner.pk, key_id)])
    await asyncio.sleep(0.05)
    assert await sync_to_async(UsageRecord.objects.count)() == 0  # below the batch size: waits for the interval
    usage_buffer.add([row("b3", owner.pk, key_id)])  # the batch is full: a flush is started at once
    kicks = list(usage_buffer._kicks)
    assert len(kicks) == 1
    # Waited for, not polled: the test database is SQLite's shared-cache in-memory one, where a read in flight makes
    # the flush's insert fail at once with "database table is locked" (the rows are then kept for the interval).
    await asyncio.wait_for(asyncio.gather(*kicks), timeout=10)
    assert await sync_to_async(UsageRecord.objects.count)() == 3
    assert await usage_buffer.flush() == 0


@pytest.mark.django_db
def test_a_flush_reads_a_sessions_history_through_its_index(owner: User) -> None:
    """The history read must not sort every turn of the session: in a long session (the benchmark's soak wrote
    100k turns to one) that made each flush slower than the last and starved the event loop of its core."""
    from django.db import connection

    session = Session.objects.create(user=owner, external_id="long-session")
    index = {i.name: i for i in Turn._meta.indexes}["turn_session_history"]
    assert index.fields == ["session", "-message_count", "-id"]  # the read's filter, then its order
    if connection.vendor == "sqlite":  # PostgreSQL's planner may scan a table this small whatever the indexes
        assert "USING INDEX turn_session_history" in accounting.history_query(session.id, 4).explain()
