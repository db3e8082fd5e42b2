"""``INSERT`` of plain tuples, conflicts ignored: the usage write-behind's ``bulk_create(ignore_conflicts=True)``
without the ORM's per-row cost.

``bulk_create`` builds a model instance per row and, per batch, compiles the statement and prepares every value of
every field through a chain of compiler and field calls. At a flush of a few thousand rows that was more than half
of the flush's CPU, spent on the database thread that shares the GIL with the event loop. Here the statement is
built once per model and backend, from ``_meta`` and ``connection.ops`` (the pieces ``bulk_create`` itself assembles:
``insert_statement`` and ``on_conflict_suffix_sql`` with ``OnConflict.IGNORE``, so SQLite gets ``INSERT OR IGNORE``
and PostgreSQL ``ON CONFLICT DO NOTHING``), and a row is a tuple sent with ``executemany``: one statement a row, so no
backend's parameter limit applies. Only the values whose field needs adapting go through the field's own
``get_db_prep_save``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, NotSupportedError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, ForeignKey, Model
from django.db.models.constants import OnConflict

# Fields whose Python value (str, int, bool) is what the driver takes: their get_db_prep_save only re-checks the type
# (and, on psycopg 3, tags an int with its size, which an INSERT's assignment cast makes moot). Every other type goes
# through its field's get_db_prep_save: a datetime made naive UTC for SQLite, a Decimal, JSON dumped or wrapped.
_AS_IS = frozenset(
    {
        "AutoField",
        "BigAutoField",
        "SmallAutoField",
        "BigIntegerField",
        "BooleanField",
        "CharField",
        "IntegerField",
        "PositiveBigIntegerField",
        "PositiveIntegerField",
        "PositiveSmallIntegerField",
        "SmallIntegerField",
        "TextField",
    }
)

Adapter = Callable[[Any, BaseDatabaseWrapper], Any]


@dataclass(frozen=True, slots=True)
class InsertStatement:
    sql: str
    columns: tuple[str, ...]  # attnames, in the order of each row's values
    adapters: tuple[tuple[int, Adapter], ...]  # (position in the row, the field's get_db_prep_save)


def insertable_fields(model: type[Model]) -> list[Field[Any, Any]]:
    """The columns an INSERT of a new row sets, as ``bulk_create`` picks them: concrete, not generated, not the
    auto-incremented key."""
    meta = model._meta
    return [f for f in meta.concrete_fields if not f.generated and f is not meta.auto_field]


_statements: dict[tuple[type[Model], tuple[str, ...], str], InsertStatement] = {}


def insert_statement(model: type[Model], columns: tuple[str, ...], db: BaseDatabaseWrapper) -> InsertStatement:
    """The statement for ``columns`` of ``model`` on ``db``'s backend, built on first use. Keyed by vendor, not by
    connection: Django opens one connection per thread, and the SQL depends only on the backend."""
    key = (model, columns, db.vendor)
    statement = _statements.get(key)
    if statement is None:
        statement = _statements[key] = _build(model, columns, db)  # a race builds the same value twice: harmless
    return statement


def _build(model: type[Model], columns: tuple[str, ...], db: BaseDatabaseWrapper) -> InsertStatement:
    fields = {f.attname: f for f in insertable_fields(model)}
    # Every column listed, once: a field added to the model and forgotten here would otherwise be left to the
    # database's default (there is none: Django keeps defaults in Python), or the row refused, at every flush.
    if sorted(columns) != sorted(fields):
        missing, unknown = sorted(fields.keys() - set(columns)), sorted(set(columns) - fields.keys())
        raise ValueError(f"{model.__name__} insert columns: missing {missing}, unknown {unknown}, or listed twice")
    if not db.features.supports_ignore_conflicts:
        raise NotSupportedError(f"{db.vendor} does not support ignoring conflicts on insert")
    ordered = [fields[name] for name in columns]
    for f in ordered:
        # A field with its own placeholder (binary on some backends, arrays, ranges) needs the compiler's SQL for it.
        if hasattr(f, "get_placeholder"):
            raise NotSupportedError(f"{model.__name__}.{f.name}: a field with its own SQL placeholder")
    qn = db.ops.quote_name
    sql = " ".join(
        part
        for part in (
            db.ops.insert_statement(on_conflict=OnConflict.IGNORE),
            qn(model._meta.db_table),
            "(" + ", ".join(qn(f.column) for f in ordered) + ")",
            "VALUES (" + ", ".join(["%s"] * len(ordered)) + ")",
            db.ops.on_conflict_suffix_sql(ordered, OnConflict.IGNORE, (), ()),
        )
        if part
    )
    adapters = tuple(
        (i, f.get_db_prep_save)
        for i, f in enumerate(ordered)
        # A foreign key's value is its target's: the referenced key's type decides.
        if (f.target_field if isinstance(f, ForeignKey) else f).get_internal_type() not in _AS_IS
    )
    return InsertStatement(sql, columns, adapters)


def rows_insert(*, model: type[Model], columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert ``rows`` (tuples of ``columns``' values) into ``model``'s table on the default database, each row
    that would break a unique constraint skipped, as ``bulk_create(ignore_conflicts=True)`` does."""
    if not rows:
        return
    db = connections[DEFAULT_DB_ALIAS]  # this thread's connection, looked up once (not per value, as the proxy does)
    statement = insert_statement(model, columns, db)
    params: Sequence[Sequence[Any]] = rows
    if statement.adapters:
        params = [_adapt(row, statement.adapters, db) for row in rows]
    with db.cursor() as cursor:
        cursor.executemany(statement.sql, params)


def _adapt(row: tuple[Any, ...], adapters: tuple[tuple[int, Adapter], ...], db: BaseDatabaseWrapper) -> list[Any]:
    values = list(row)
    for i, adapt in adapters:
        value = values[i]
        if value is not None:  # NULL stays NULL: what get_db_prep_save returns for None, for these fields
            values[i] = adapt(value, db)
    return values
