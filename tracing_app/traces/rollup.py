"""Merging a written batch's figures into the transactions' :class:`Trace` rows.

Runs in the recorder's writer (never on a request or task), inside the transaction that inserts the
batch's events: missing rows are created first (concurrent writers cannot both create one), then the
batch's rows are locked, both in correlation ID order (two writers never wait on each other in a circle),
merged, and written.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from tracing_app.model_columns import column
from tracing_app.traces.models import Trace, TraceEvent
from tracing_app.traces.summary import Entry, EventLike, Figures, figures_of, tally

_FIELDS = [
    "started_at",
    "ended_at",
    "duration_ms",
    "outcome",
    "entry_point",
    "entry_hop",
    "entry_sequence",
    "entry_method",
    "entry_status",
    "single_read",
    "events",
    "requests",
    "tasks",
    "retries",
    "errors",
    "compensations",
    "open_hops",
    "queued",
]


def merge_batch(alias: str, events: Iterable[EventLike]) -> None:
    """Add ``events`` (just inserted) to their transactions' figures; call inside a transaction."""
    found = tally(events)
    if not found:
        return
    manager = Trace.objects.using(alias)
    fresh = [_new_row(cid, found[cid]) for cid in sorted(found)]
    connection = connections[alias]
    if connection.vendor == "postgresql":
        # Most transactions are new to the store (a request's events travel in one batch): their rows are
        # written whole by one statement, and only the others are read, merged and updated.
        created = _insert_new(connection, fresh)
    else:
        manager.bulk_create(
            [Trace(correlation_id=row.correlation_id, started_at=row.started_at) for row in fresh],
            ignore_conflicts=True,
        )
        created = set()
    existing = [cid for cid in found if cid not in created]
    if not existing:
        return
    rows = manager.select_for_update().filter(correlation_id__in=existing).order_by("correlation_id")
    changed = []
    for row in rows:
        figures = figures_of_row(row)
        figures.merge(found[row.correlation_id])
        write_figures(row, figures)
        changed.append(row)
    if connection.vendor == "postgresql":
        _update(connection, changed)
    else:
        manager.bulk_update(changed, _FIELDS)


class _Figures:
    """A ``Trace`` row's columns as :func:`write_figures` fills them, without a model instance."""

    __slots__ = ("correlation_id", *_FIELDS)
    started_at: datetime
    ended_at: datetime | None
    duration_ms: float | None
    outcome: str
    entry_point: str
    entry_hop: str
    entry_sequence: int | None
    entry_method: str
    entry_status: str
    single_read: bool

    def __init__(self, correlation_id: str) -> None:
        self.correlation_id = correlation_id


def _new_row(correlation_id: str, found: Figures) -> _Figures:
    row = _Figures(correlation_id)
    # A batch's figures are complete for a transaction new to the store: merging them into empty ones
    # would only copy them.
    write_figures(row, found)
    return row


# The staged columns of a row after its key, read in C rather than by a generator of getattr calls.
_figures_of_row = operator.attrgetter(*_FIELDS)

# A session-local table the batch's rows are copied into, then inserted or merged from with one statement
# each: COPY costs the writer far less per row than binding parameters does.
_STAGE = "tracing_app_trace_stage"


def _stage(connection: BaseDatabaseWrapper, rows: list[Any]) -> str:
    """Copy ``rows`` into the (emptied) staging table; returns the quoted column list."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(column(Trace, name)) for name in ("pk", *_FIELDS))
    with connection.cursor() as cursor:
        # Emptied here too: batches flushed inside one outer transaction (tests) share a commit. One round
        # trip for both statements.
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} (LIKE {quote(Trace._meta.db_table)}) "
            f"ON COMMIT DELETE ROWS; TRUNCATE {_STAGE}"
        )
        with (
            connection.wrap_database_errors,
            cursor.cursor.copy(f"COPY {_STAGE} ({columns}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row((row.correlation_id, *_figures_of_row(row)))
    return columns


def _insert_new(connection: BaseDatabaseWrapper, rows: list[_Figures]) -> set[str]:
    """Insert ``rows`` (in key order, so concurrent writers lock alike); returns the keys inserted."""
    columns = _stage(connection, rows)
    table = connection.ops.quote_name(Trace._meta.db_table)
    key = connection.ops.quote_name(column(Trace, "pk"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {_STAGE} ORDER BY {key} "  # noqa: S608 (names from the model)
            f"ON CONFLICT ({key}) DO NOTHING RETURNING {key}"
        )
        return {found for (found,) in cursor.fetchall()}


def _update(connection: BaseDatabaseWrapper, rows: list[Trace]) -> None:
    """Write the figures of ``rows`` in one ``UPDATE ... FROM`` the staging table."""
    if not rows:
        return
    _stage(connection, rows)
    quote = connection.ops.quote_name
    table = quote(Trace._meta.db_table)
    key = quote(column(Trace, "pk"))
    quoted = [quote(column(Trace, name)) for name in _FIELDS]
    assignments = ", ".join(f"{name} = s.{name}" for name in quoted)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {assignments} FROM {_STAGE} AS s WHERE {table}.{key} = s.{key}")  # noqa: S608 (names from the model)


def rebuild(alias: str, *, everything: bool = False, batch_size: int = 200) -> Iterator[int]:
    """Recount the stored figures from the events, a batch of transactions per transaction block;
    yields how many were recounted after each batch.

    By default only rows that have none (written before the figures existed); with ``everything``,
    every row (after ``TRACE_COMPENSATION_TASKS`` changed, say).
    """
    manager = Trace.objects.using(alias)
    last = ""
    while True:
        rows = manager.filter(correlation_id__gt=last).order_by("correlation_id")
        if not everything:
            rows = rows.filter(events=0)
        batch = list(rows[:batch_size])
        if not batch:
            return
        with transaction.atomic(using=alias):
            events = TraceEvent.objects.using(alias).filter(correlation_id__in=[row.pk for row in batch])
            found: dict[str, list[TraceEvent]] = {}
            for event in events.only(*_EVENT_FIELDS).iterator():
                found.setdefault(event.correlation_id, []).append(event)
            for row in batch:
                write_figures(row, figures_of(found.get(row.pk, ())))
            manager.bulk_update(batch, _FIELDS)
        last = batch[-1].pk
        yield len(batch)


_EVENT_FIELDS = (
    "correlation_id",
    "hop_id",
    "sequence",
    "kind",
    "name",
    "status",
    "error",
    "timestamp",
    "attributes",
)


def figures_of_row(row: Trace) -> Figures:
    """The figures stored on ``row`` (a new row has none yet: its start alone)."""
    if not row.events:
        return Figures()
    return Figures(
        events=row.events,
        requests=row.requests,
        tasks=row.tasks,
        retries=row.retries,
        errors=row.errors,
        open_hops=row.open_hops,
        queued=row.queued,
        compensations=row.compensations,
        started_at=row.started_at,
        ended_at=row.ended_at,
        entry=Entry(row.entry_hop, row.entry_sequence, row.entry_point, row.entry_method, row.entry_status),
    )


def write_figures(row: Trace | _Figures, figures: Figures) -> None:
    entry = figures.entry
    row.started_at = figures.started_at or row.started_at
    row.ended_at = figures.ended_at
    row.duration_ms = figures.duration_ms
    row.outcome = figures.outcome
    row.entry_point = entry.name[:255]
    row.entry_hop = entry.hop_id[:128]
    row.entry_sequence = entry.sequence
    row.entry_method = entry.method[:16]
    row.entry_status = entry.status[:32]
    row.single_read = figures.single_read
    for name in ("events", "requests", "tasks", "retries", "errors", "compensations", "open_hops", "queued"):
        setattr(row, name, getattr(figures, name))
