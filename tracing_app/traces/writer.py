"""Writing one batch of trace events: ``COPY`` on PostgreSQL with psycopg 3, ``bulk_create`` elsewhere.

Runs in the writer thread of :mod:`tracing_app.traces.buffer`. Rows are plain tuples (no model
instances), and on PostgreSQL they stream through one ``COPY ... FROM STDIN``, which costs the writer a
fraction of what building and inserting model instances does; the batch's figures are merged into the
``Trace`` rows in the same transaction (:mod:`tracing_app.traces.rollup`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from tracing_app.model_columns import column
from tracing_app.traces.models import TraceEvent
from tracing_app.traces.rollup import merge_batch


class EventRow(NamedTuple):
    """One ``TraceEvent`` row, its fields in the order ``COPY`` sends them."""

    correlation_id: str
    hop_id: str
    causation_id: str
    sequence: int
    kind: str
    name: str
    status: str
    duration_ms: float | None
    error: bool
    timestamp: datetime
    host: str
    pid: int
    trace_id: str
    span_id: str
    attributes: dict[str, Any]


#: An :class:`EventRow` from a tuple of all its fields, without the NamedTuple constructor's Python frame.
new_event_row: Callable[[tuple[Any, ...]], EventRow] = functools.partial(tuple.__new__, EventRow)


def write(alias: str, rows: Sequence[EventRow]) -> None:
    """Insert ``rows`` and merge their figures, in one transaction on ``alias``."""
    connection = connections[alias]
    with transaction.atomic(using=alias):
        if not _copy(connection, rows):
            TraceEvent.objects.using(alias).bulk_create([TraceEvent(**row._asdict()) for row in rows])
        merge_batch(alias, rows)


def _copy(connection: BaseDatabaseWrapper, rows: Sequence[EventRow]) -> bool:
    """Stream ``rows`` through ``COPY``; False where the driver has no COPY (not PostgreSQL, psycopg2)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        copy = getattr(cursor.cursor, "copy", None)
        if copy is None:
            return False
        # Trace events are telemetry: the commit need not wait for the WAL flush (a server crash may lose
        # the last moments' events, never corrupt anything), which lets one writer keep up with far more.
        cursor.execute("SET LOCAL synchronous_commit TO OFF")
        dumps = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode
        # psycopg's errors become Django's (DataError, OperationalError...), as for any other query.
        with connection.wrap_database_errors, copy(_statement(connection)) as stream:
            for row in rows:
                stream.write_row((*row[:-1], dumps(row.attributes)))
    return True


def _statement(connection: BaseDatabaseWrapper) -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(column(TraceEvent, name)) for name in EventRow._fields)
    return f"COPY {quote(TraceEvent._meta.db_table)} ({columns}) FROM STDIN"
