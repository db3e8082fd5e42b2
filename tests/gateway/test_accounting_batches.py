"""``usage_write`` works per flush, not per row: several turns of a session in one batch, re-flushes, the number of
queries, and the history hashes that stored turns are matched by."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from gateway import accounting
from gateway.accounting import TurnRow, history_hash, usage_write
from gateway.models import ApiKey, Session, Turn, UsageRecord
from gateway.services import apikey_create
from tests.gateway.test_accounting import T0, msgs, row, turn

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "claude_code"


@pytest.fixture
def owner() -> User:
    return User.objects.create_user(username="batches", password="x" * 12)


@pytest.fixture
def key_id(owner: User) -> int:
    return ApiKey.objects.get(prefix=apikey_create(user=owner).prefix).pk


def at(seconds: float) -> Any:
    return T0 + timedelta(seconds=seconds)


def stored(request_id: str) -> list[Any]:
    return list(Turn.objects.get(request_id=request_id).new_messages)


# --- several turns of a session in one flush --------------------------------------------------------------------------


@pytest.mark.django_db
def test_turns_of_one_session_in_one_flush_each_store_only_what_is_new(owner: User, key_id: int) -> None:
    history = msgs(5)
    turns = {
        "t1": turn("t1", owner.pk, "s", history[:1], at=at(1)),
        "t2": turn("t2", owner.pk, "s", history[:3], at=at(2)),
        "t3": turn("t3", owner.pk, "s", history, at=at(3)),
        "t4": turn("t4", owner.pk, "s", history, at=at(4)),  # the same history resent
    }
    rows = [row(name, owner.pk, key_id, session="s", at=t.created_at) for name, t in turns.items()]
    # Listed out of time order (turns finish in any order): the batch is taken in time order all the same.
    usage_write(rows=rows, turns=[turns["t3"], turns["t1"], turns["t4"], turns["t2"]])
    assert [stored(name) for name in ("t1", "t2", "t3", "t4")] == [history[:1], history[1:3], history[3:], []]
    assert list(Turn.objects.values_list("message_count", flat=True)) == [1, 3, 5, 5]
    assert {t.history_hash for t in Turn.objects.filter(message_count=5)} == {history_hash(history, 5)}
    assert Session.objects.get().requests == 4


@pytest.mark.django_db
def test_a_turn_continues_the_database_and_the_flush_whichever_is_longer(owner: User) -> None:
    main, side = msgs(8), [{"role": "user", "content": "a title, please"}]
    usage_write(rows=[], turns=[turn("m1", owner.pk, "s", main[:3])])
    usage_write(
        rows=[],
        turns=[
            turn("m2", owner.pk, "s", main[:5], at=at(1)),  # continues the stored m1
            turn("side", owner.pk, "s", side, at=at(2)),  # another conversation in the session
            turn("m3", owner.pk, "s", main, at=at(3)),  # continues m2, written in this same flush
            turn("m1-again", owner.pk, "s", main[:3], at=at(4)),  # the stored m1's history, resent
        ],
    )
    assert stored("m2") == main[3:5]
    assert stored("side") == side
    assert stored("m3") == main[5:]
    assert stored("m1-again") == []


@pytest.mark.django_db
def test_the_same_turn_twice_in_one_flush_is_written_once(owner: User) -> None:
    usage_write(rows=[], turns=[turn("dup", owner.pk, "s", msgs(2)), turn("dup", owner.pk, "s", msgs(2))])
    assert Turn.objects.get().new_messages == msgs(2)


@pytest.mark.django_db
def test_a_short_turn_in_a_long_session_finds_its_history_past_the_longer_ones(owner: User) -> None:
    """More than the candidate window of longer turns: the short one's candidates are read for it."""
    usage_write(rows=[], turns=[turn("first", owner.pk, "s", msgs(1))])
    usage_write(rows=[], turns=[turn(f"long{i}", owner.pk, "s", msgs(10), at=at(1 + i)) for i in range(60)])
    usage_write(
        rows=[],
        turns=[
            turn("longer", owner.pk, "s", msgs(12), at=at(100)),
            turn("short", owner.pk, "s", msgs(1), at=at(101)),
            turn("short-again", owner.pk, "s", msgs(1), at=at(102)),
        ],
    )
    assert stored("longer") == msgs(12)[10:]
    assert stored("short") == stored("short-again") == []  # the first turn's history, 61 turns back


WINDOW = 3


@pytest.mark.django_db
def test_the_flush_matches_the_turn_by_turn_algorithm(owner: User, monkeypatch: pytest.MonkeyPatch) -> None:
    """Random flushes (several sessions, branching conversations, resends, retried flushes) against a model of the
    per-turn algorithm the flush replaced: compare each turn with the ``_CANDIDATES`` earlier turns of its session
    with the longest histories (newest first among equals), keep the first whose hash matches. A window of 3 makes
    its edges (a short turn behind longer ones, the flush's own turns among the stored) come up often."""
    monkeypatch.setattr(accounting, "_CANDIDATES", WINDOW)
    rng = random.Random(20261126)
    conversations = [[{"role": "user", "content": f"c{c}-{i}"} for i in range(9)] for c in range(4)]
    written: dict[str, list[tuple[int, str]]] = {}  # session -> (count, hash) in insertion (id) order
    expected: dict[str, list[Any]] = {}
    clock, batches = 0, []
    for _ in range(25):
        batch: list[TurnRow] = []
        for _ in range(rng.randint(1, 6)):
            clock += 1
            messages = rng.choice(conversations)[: rng.randint(0, 9)]
            batch.append(turn(f"r{clock}", owner.pk, rng.choice("ab"), messages, at=at(clock)))
        batches.append(batch)
        if rng.random() < 0.2:  # a flush that failed after writing, retried with more turns
            batch = [*rng.choice(batches), *batch]
        rng.shuffle(batch)
        usage_write(rows=[], turns=batch)
        for t in sorted(batch, key=lambda t: t.created_at):
            if t.request_id in expected:
                continue
            count, mine = len(t.messages), written.setdefault(t.session, [])
            # The longest histories first, the newest first among equals (a stable sort of the newest first).
            window = sorted((c for c in reversed(mine) if c[0] <= count), key=lambda c: -c[0])[:WINDOW]
            previous = next((c for c, h in window if history_hash(t.messages, c) == h), 0)
            expected[t.request_id] = t.messages[previous:]
            mine.append((count, history_hash(t.messages, count)))
    assert dict(Turn.objects.values_list("request_id", "new_messages")) == expected


# --- re-flushes -------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_reflush_adds_nothing_and_counts_nothing_twice(owner: User, key_id: int) -> None:
    history = msgs(6)
    rows = [row(f"q{i}", owner.pk, key_id, session="s", at=at(i), cost_usd=Decimal("0.25")) for i in range(3)]
    turns = [turn(f"q{i}", owner.pk, "s", history[: 2 * i + 2], at=at(i)) for i in range(3)]
    usage_write(rows=rows, turns=turns)
    before = list(Turn.objects.values_list("id", "request_id", "new_messages", "history_hash"))
    usage_write(rows=rows, turns=turns)  # the same flush again: the first one committed, its caller did not know
    assert list(Turn.objects.values_list("id", "request_id", "new_messages", "history_hash")) == before
    assert UsageRecord.objects.count() == 3
    session = Session.objects.get()
    assert (session.requests, session.cost_usd, session.last_seen_at) == (3, Decimal("0.75"), at(2))
    # A retry carrying a new turn as well: only that one is written, continuing the stored ones.
    more = [*history, {"role": "assistant", "content": "a6"}]
    usage_write(
        rows=[*rows, row("q3", owner.pk, key_id, session="s", at=at(3), cost_usd=Decimal("0.25"))],
        turns=[*turns, turn("q3", owner.pk, "s", more, at=at(3))],
    )
    assert Turn.objects.count() == 4 and stored("q3") == more[6:]
    session.refresh_from_db()
    assert (session.requests, session.cost_usd) == (4, Decimal("1.00"))


# --- session counters -------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_last_seen_is_the_latest_request_of_the_flush_whatever_the_order(owner: User, key_id: int) -> None:
    late, early = row("late", owner.pk, key_id, session="s", at=at(300)), row("early", owner.pk, key_id, session="s")
    usage_write(rows=[late, early], turns=[])
    session = Session.objects.get()
    assert (session.started_at, session.last_seen_at, session.requests) == (T0, at(300), 2)


@pytest.mark.django_db
def test_the_session_cost_does_not_depend_on_how_rows_fall_into_flushes(owner: User, key_id: int) -> None:
    costs = [Decimal("0.0037035"), Decimal("0.0000005"), Decimal("0.0000004")]  # token-priced: 7 decimals
    usage_write(
        rows=[row(f"one{i}", owner.pk, key_id, session="one", cost_usd=c) for i, c in enumerate(costs)], turns=[]
    )
    for i, cost in enumerate(costs):
        usage_write(rows=[row(f"many{i}", owner.pk, key_id, session="many", cost_usd=cost)], turns=[])
    one, many = (Session.objects.get(external_id=name).cost_usd for name in ("one", "many"))
    assert one == many
    # The column has 6 decimals. PostgreSQL rounds each addition (half away from zero); SQLite keeps a float sum.
    assert one == (Decimal("0.003704") if connection.vendor == "sqlite" else Decimal("0.003705"))


# --- the number of queries --------------------------------------------------------------------------------------------


def _flush(owner: User, key_id: int, start: int, size: int) -> list[dict[str, Any]]:
    history = msgs(2 * (start + size) + 2)
    numbers = range(start, start + size)
    rows = [row(f"n{i}", owner.pk, key_id, session="s", at=at(i), cost_usd=Decimal("0.01")) for i in numbers]
    rows += [row(f"n{i}", owner.pk, key_id, kind="attempt", session="s", at=at(i)) for i in numbers]
    turns = [turn(f"n{i}", owner.pk, "s", history[: 2 * i + 2], at=at(i)) for i in numbers]
    with CaptureQueriesContext(connection) as queries:
        usage_write(rows=rows, turns=turns)
    return queries.captured_queries


@pytest.mark.django_db
def test_a_flush_costs_a_few_queries_whatever_its_size(owner: User, key_id: int) -> None:
    _flush(owner, key_id, 0, 60)  # a session with history: candidates to read
    small = _flush(owner, key_id, 60, 2)
    large = _flush(owner, key_id, 62, 50)  # 100 usage rows, 50 turns
    assert len(small) <= 12, [q["sql"][:80] for q in small]
    # Rows are inserted with one executemany per table, whatever their number.
    assert len(large) == len(small), [q["sql"][:80] for q in large]
    assert sum(" times: INSERT " in q["sql"] for q in large) == 2  # usage records, turns
    assert sum(q["sql"].startswith('UPDATE "gateway_session"') for q in large) == 1
    assert sum('FROM "gateway_turn"' in q["sql"] for q in large) == 2  # the retried ones, the candidates
    assert Turn.objects.count() == 112 and stored("n111") == msgs(224)[222:]
    session = Session.objects.get()
    assert (session.requests, session.cost_usd, session.last_seen_at) == (112, Decimal("1.12"), at(111))


# --- history hashes ---------------------------------------------------------------------------------------------------


def test_history_hash_is_the_sha256_of_the_sorted_compact_json_prefix() -> None:
    """Stored turns are matched by this hash: its format must never change."""
    assert history_hash(msgs(3), 2) == "1c1b5b5685f5e20c98dca9c9f94c2a1bbe6000120759cef6c3130862aaf411f3"
    assert history_hash([], 0) == "4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945"  # sha256("[]")


@pytest.mark.parametrize("name", ["2.1.197-turn2.json", "2.1.332-turn2.json"])
def test_prefix_hashes_equal_history_hash_for_every_prefix(name: str) -> None:
    messages = json.loads((FIXTURES / name).read_text())["messages"]
    messages += [{"role": "user", "content": [{"type": "text", "text": "ünïcode ✓ \u2028", "z": 1, "a": [None, 1.5]}]}]
    counts = set(range(len(messages) + 1))
    assert accounting._prefix_hashes(messages, counts) == {c: history_hash(messages, c) for c in counts}
    assert accounting._prefix_hashes(messages, {2}) == {2: history_hash(messages, 2)}
