"""The tuple INSERT behind usage_write: the rows bulk_create(ignore_conflicts=True) wrote, without the ORM per row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Model
from django.test.utils import CaptureQueriesContext

from gateway import accounting
from gateway.accounting_sql import insert_statement, insertable_fields, rows_insert
from gateway.models import ApiKey, Session, Turn, UsageRecord
from gateway.services import apikey_create

pytestmark = pytest.mark.django_db

# Not UTC, with microseconds: SQLite stores it as naive UTC text, PostgreSQL as timestamptz.
WHEN = datetime(2026, 11, 26, 14, 30, 5, 123456, tzinfo=timezone(timedelta(hours=2)))


@pytest.fixture
def ids() -> dict[str, int]:
    owner = User.objects.create_user(username="sql", password="x" * 12)
    key = ApiKey.objects.get(prefix=apikey_create(user=owner).prefix)
    session = Session.objects.create(user=owner, external_id="s", api_key=key)
    return {"user": owner.pk, "key": key.pk, "session": session.pk}


def record(ids: dict[str, int], record_id: str, **overrides: Any) -> tuple[Any, ...]:
    values: dict[str, Any] = {
        "record_id": record_id,
        "kind": "request",
        "request_id": record_id.split(":")[0],
        "created_at": WHEN,
        "api_key_id": ids["key"],
        "user_id": ids["user"],
        "session_id": ids["session"],
        "provider": "anthropic",
        "upstream_model": "claude-sonnet-4-5",
        "client_model": "claude-sonnet-4-5",
        "route_rule": "default",
        "input_tokens": 1234,
        "output_tokens": 56,
        "cache_read_tokens": 7,
        "cache_write_tokens": 8,
        "cost_usd": Decimal("0.12345678"),
        "latency_ms": 321,
        "ttft_ms": None,
        "status": 529,
        "error_type": "overloaded_error",
        "cache_hit": True,
        "stream": False,
        **overrides,
    }
    return tuple(values[name] for name in accounting._RECORD_COLUMNS)


def raw(model: type[Model], exclude: set[str]) -> list[tuple[Any, ...]]:
    """The stored values as the driver returns them (no ORM conversion), ordered by id."""
    fields = [f for f in model._meta.concrete_fields if f.attname not in exclude]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {connection.ops.quote_name(model._meta.db_table)} ORDER BY id")
        return [tuple(r) for r in cursor.fetchall()]


# --- the columns ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "columns"), [(UsageRecord, accounting._RECORD_COLUMNS), (Turn, accounting._TURN_COLUMNS)]
)
def test_the_columns_are_every_concrete_field_but_the_id(model: type[Model], columns: tuple[str, ...]) -> None:
    # A field added to the model fails here, not silently left out of every usage row.
    everything = [f.attname for f in model._meta.concrete_fields if not f.primary_key]
    assert sorted(columns) == sorted(everything) == sorted(f.attname for f in insertable_fields(model))
    assert len(set(columns)) == len(columns)


def test_a_column_list_missing_a_field_or_naming_an_unknown_one_is_refused() -> None:
    with pytest.raises(ValueError, match=r"missing \['stream'\], unknown \[\]"):
        insert_statement(UsageRecord, accounting._RECORD_COLUMNS[:-1], connection)
    with pytest.raises(ValueError, match=r"unknown \['nope'\]"):
        insert_statement(UsageRecord, (*accounting._RECORD_COLUMNS, "nope"), connection)
    with pytest.raises(ValueError, match="listed twice"):
        insert_statement(UsageRecord, (*accounting._RECORD_COLUMNS, "kind"), connection)


@pytest.mark.parametrize(
    ("model", "columns"), [(UsageRecord, accounting._RECORD_COLUMNS), (Turn, accounting._TURN_COLUMNS)]
)
def test_the_statement_is_the_one_bulk_create_ignoring_conflicts_sends(
    model: type[Model], columns: tuple[str, ...], ids: dict[str, int]
) -> None:
    objects: dict[type[Model], Model] = {
        UsageRecord: UsageRecord(record_id="orm:request", kind="request", request_id="orm"),
        Turn: Turn(session_id=ids["session"], request_id="orm"),
    }
    with CaptureQueriesContext(connection) as queries:
        model._default_manager.bulk_create([objects[model]], ignore_conflicts=True)
    (django,) = (q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT"))
    ours = insert_statement(model, columns, connection).sql
    # The same statement, column for column, up to the values (Django's is logged with them filled in).
    assert ours.split(" VALUES ")[0] == django.split(" VALUES ")[0]
    if connection.vendor == "postgresql":
        assert ours.endswith(" ON CONFLICT DO NOTHING") and django.endswith(" ON CONFLICT DO NOTHING")
    elif connection.vendor == "sqlite":
        assert ours.startswith("INSERT OR IGNORE INTO ")


def test_only_the_values_that_need_the_backend_are_adapted() -> None:
    adapted = {
        accounting._RECORD_COLUMNS[i]
        for i, _ in insert_statement(UsageRecord, accounting._RECORD_COLUMNS, connection).adapters
    }
    assert adapted == {"created_at", "cost_usd"}
    adapted = {
        accounting._TURN_COLUMNS[i] for i, _ in insert_statement(Turn, accounting._TURN_COLUMNS, connection).adapters
    }
    assert adapted == {"created_at", "new_messages", "response"}


# --- conflicts --------------------------------------------------------------------------------------------------------


def test_the_same_record_id_twice_is_one_row_and_no_error(ids: dict[str, int]) -> None:
    rows_insert(model=UsageRecord, columns=accounting._RECORD_COLUMNS, rows=[record(ids, "r1:request")])
    rows_insert(
        model=UsageRecord,
        columns=accounting._RECORD_COLUMNS,
        # The first is already stored, the second twice in the batch: both skipped, the third written.
        rows=[record(ids, "r1:request", status=200), record(ids, "r2:request"), record(ids, "r2:request", status=1)],
    )
    assert list(UsageRecord.objects.order_by("id").values_list("record_id", "status")) == [
        ("r1:request", 529),
        ("r2:request", 529),
    ]


def test_the_same_turn_twice_is_one_row_and_no_error(ids: dict[str, int]) -> None:
    turn = (ids["session"], "t1", WHEN, [{"role": "user", "content": "hi"}], None, 1, "h")
    rows_insert(model=Turn, columns=accounting._TURN_COLUMNS, rows=[turn])
    rows_insert(model=Turn, columns=accounting._TURN_COLUMNS, rows=[turn, (*turn[:-1], "other")])
    assert list(Turn.objects.values_list("request_id", "history_hash")) == [("t1", "h")]


def test_no_rows_no_query() -> None:
    with CaptureQueriesContext(connection) as queries:
        rows_insert(model=UsageRecord, columns=accounting._RECORD_COLUMNS, rows=[])
    assert queries.captured_queries == []


# --- values -----------------------------------------------------------------------------------------------------------


def test_usage_values_round_trip_exactly(ids: dict[str, int]) -> None:
    rows_insert(
        model=UsageRecord,
        columns=accounting._RECORD_COLUMNS,
        rows=[record(ids, "a:request"), record(ids, "b:attempt:1", cost_usd=None, ttft_ms=12, api_key_id=None)],
    )
    a, b = UsageRecord.objects.order_by("id")
    assert (a.cost_usd, a.created_at, a.ttft_ms, a.cache_hit, a.stream, a.status) == (
        Decimal("0.12345678"),
        WHEN,
        None,
        True,
        False,
        529,
    )
    assert a.created_at.astimezone(UTC) == datetime(2026, 11, 26, 12, 30, 5, 123456, tzinfo=UTC)
    assert (b.cost_usd, b.ttft_ms, b.api_key_id, b.session_id) == (None, 12, None, ids["session"])


def test_turn_values_round_trip_exactly(ids: dict[str, int]) -> None:
    messages = [{"role": "user", "content": 'héllo ✓ 日本語 \U0001f600 "quoted" \\ back'}, {"n": [1, 2.5, None, True]}]
    response = {"content": [{"type": "text", "text": "ça va — oui"}], "usage": {"input_tokens": 3}}
    rows_insert(
        model=Turn,
        columns=accounting._TURN_COLUMNS,
        rows=[
            (ids["session"], "t1", WHEN, messages, response, 2, "x" * 64),
            (ids["session"], "t2", WHEN, [], None, 0, ""),
        ],
    )
    one, two = Turn.objects.order_by("id")
    assert (one.new_messages, one.response, one.created_at, one.message_count) == (messages, response, WHEN, 2)
    assert (two.new_messages, two.response) == ([], None)
    assert Turn.objects.filter(response__isnull=True).get() == two  # SQL NULL, not JSON null


def turn_values(ids: dict[str, int], request_id: str) -> tuple[Any, ...]:
    messages = [{"role": "user", "content": "é ✓ \U0001f600", "n": [1, 2.5, None]}]
    return (ids["session"], request_id, WHEN, messages, {"z": 1, "a": "ça"}, 1, "h" * 64)


@pytest.mark.parametrize(
    ("model", "columns", "values"),
    [(UsageRecord, accounting._RECORD_COLUMNS, record), (Turn, accounting._TURN_COLUMNS, turn_values)],
)
def test_the_stored_values_are_those_bulk_create_stores(
    model: type[Model], columns: tuple[str, ...], values: Any, ids: dict[str, int]
) -> None:
    orm = model(**dict(zip(columns, values(ids, "orm:request"), strict=True)))
    model._default_manager.bulk_create([orm], ignore_conflicts=True)
    rows_insert(model=model, columns=columns, rows=[values(ids, "ours:request")])
    # As the driver returns them: the datetime's text on SQLite, the JSON's text (key order, escapes) and all.
    theirs, ours = raw(model, {"id", "record_id", "request_id"})  # the ids differ, by design
    assert ours == theirs
