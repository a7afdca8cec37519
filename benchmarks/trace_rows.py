"""Generated trace store rows, written with COPY (psycopg 3) for the trace store and purge sections.

Each transaction is ten events shaped like a checkout request that publishes two tasks, one of which
fails, plus its :class:`~tracing_app.traces.models.Trace` row with the figures the recorder would have
merged. One transaction in ten is a single GET (a poll), one in three has another entry point and one in
a thousand failed with ``PaymentUnavailable``, so every filter and search has rows to skip. Transactions
start ``SPACING`` apart.

Secondary indexes are dropped before the COPY and built again after it: building an index once is far
quicker than maintaining it row by row.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

PREFIX = "TB"
EVENTS_PER_TRANSACTION = 10
SPACING = timedelta(milliseconds=10)
RARE_ERROR = "PaymentUnavailable"
_NULL = "\\N"
# Transactions per COPY chunk.
_CHUNK = 5_000

_EVENT_COLUMNS = (
    "correlation_id, hop_id, causation_id, sequence, kind, name, status, duration_ms, error, timestamp, "
    "host, pid, trace_id, span_id, attributes"
)
_TRACE_COLUMNS = (
    "correlation_id, started_at, ended_at, duration_ms, outcome, entry_point, entry_hop, entry_sequence, "
    "entry_method, entry_status, single_read, events, requests, tasks, retries, errors, compensations, "
    "open_hops, queued"
)
# Per event position: hop prefix, caused by the request, kind, name, status, carries a duration, error.
_EVENTS = [
    (PREFIX, False, "request.started", "checkout", "", False, False),
    (PREFIX, False, "task.published", "orders.charge", "", False, False),
    (PREFIX, False, "task.published", "orders.email", "", False, False),
    (PREFIX, False, "request.finished", "checkout", "201", True, False),
    ("T1", True, "task.started", "orders.charge", "", False, False),
    ("T1", True, "task.succeeded", "orders.charge", "SUCCESS", True, False),
    ("T2", True, "task.started", "orders.email", "", False, False),
    ("T2", True, "task.failed", "orders.email", "FAILURE", True, True),
    ("T2", True, "log", "orders.email", "WARNING", False, False),
    ("T2", True, "error", "orders.email", "", False, True),
]


def correlation_id(transaction: int) -> str:
    return PREFIX + str(transaction).zfill(24)


@dataclass(frozen=True)
class Part:
    """Transactions ``first`` to ``first + transactions - 1``, the last one starting at ``newest``."""

    first: int
    transactions: int
    newest: datetime

    @property
    def last(self) -> int:
        return self.first + self.transactions


def _moment(value: datetime) -> str:
    return value.isoformat(sep=" ")


def _event_lines(part: Part) -> Iterator[str]:
    step = timedelta(milliseconds=1)
    for t in range(part.first, part.last):
        suffix = str(t).zfill(24)
        cid = PREFIX + suffix
        started = part.newest - (part.last - 1 - t) * SPACING
        for e, (hop, caused, kind, name, status, timed, error) in enumerate(_EVENTS):
            if e == 0:
                attributes = f'{{"method": "POST", "path": "/api/orders/", "order_id": {t}}}'
            elif e == 9 and t % 1000 == 0:
                attributes = f'{{"exception": "{RARE_ERROR}", "exception_message": "gateway said no"}}'
            else:
                attributes = "{}"
            yield (
                f"{cid}\t{hop}{suffix}\t{cid if caused else ''}\t{e + 1}\t{kind}\t{name}\t{status}\t"
                f"{5 + t % 200 if timed else _NULL}\t{'t' if error else 'f'}\t{_moment(started + e * step)}\t"
                f"bench-host\t4242\t\t\t{attributes}\n"
            )


def _trace_lines(part: Part) -> Iterator[str]:
    for t in range(part.first, part.last):
        cid = correlation_id(t)
        started = part.newest - (part.last - 1 - t) * SPACING
        poll = t % 10 == 0
        yield (
            f"{cid}\t{_moment(started)}\t{_moment(started + timedelta(milliseconds=9))}\t{9 + t % 5000}\t"
            f"{'ok' if poll else 'failed'}\t{'orders' if t % 3 == 0 else 'checkout'}\t{cid}\t1\t"
            f"{'GET' if poll else 'POST'}\t{'200' if poll else '201'}\t{'t' if poll else 'f'}\t"
            f"10\t1\t2\t0\t{0 if poll else 2}\t0\t0\t0\n"
        )


def _copy(connection: psycopg.Connection, table: str, columns: str, lines: Iterator[str]) -> None:
    with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        chunk: list[str] = []
        for line in lines:
            chunk.append(line)
            if len(chunk) >= _CHUNK * EVENTS_PER_TRANSACTION:
                copy.write("".join(chunk))
                chunk.clear()
        if chunk:
            copy.write("".join(chunk))


def secondary_indexes(connection: psycopg.Connection, table: str) -> list[tuple[str, str]]:
    """``(name, CREATE INDEX statement)`` of every index of ``table`` but its primary key."""
    rows = connection.execute(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i JOIN pg_class c ON c.relname = i.indexname "
        "JOIN pg_index x ON x.indexrelid = c.oid WHERE i.tablename = %s AND NOT x.indisprimary",
        [table],
    ).fetchall()
    return [(name, definition) for name, definition in rows]


def copy_store(
    connection: psycopg.Connection, events_table: str, traces_table: str, parts: Sequence[Part]
) -> None:
    """Append ``parts`` to the two tables, building their secondary indexes again afterwards."""
    indexes = secondary_indexes(connection, events_table) + secondary_indexes(connection, traces_table)
    for name, _ in indexes:
        connection.execute(f'DROP INDEX "{name}"')
    for part in parts:
        _copy(connection, events_table, _EVENT_COLUMNS, _event_lines(part))
        _copy(connection, traces_table, _TRACE_COLUMNS, _trace_lines(part))
    connection.execute("SET maintenance_work_mem = '512MB'")
    for _, definition in indexes:
        connection.execute(definition)
    connection.execute(f"VACUUM ANALYZE {events_table}")
    connection.execute(f"VACUUM ANALYZE {traces_table}")


def fill(connection: psycopg.Connection, events_table: str, traces_table: str, events: int) -> float | None:
    """Make the two tables hold exactly ``events`` generated events, the newest now; returns the seconds
    spent generating, or None when an earlier run's rows were reused."""
    # Rows recorded by other sections (a sampled HTTP configuration) are not part of the store.
    connection.execute(f"DELETE FROM {events_table} WHERE correlation_id NOT LIKE '{PREFIX}%'")
    connection.execute(f"DELETE FROM {traces_table} WHERE correlation_id NOT LIKE '{PREFIX}%'")
    (stored,) = connection.execute(f"SELECT count(*) FROM {events_table}").fetchone()
    # Rows of an earlier shape (no rare error to search for) are generated again.
    current = connection.execute(
        f"SELECT 1 FROM {events_table} WHERE attributes @> %s::jsonb LIMIT 1",
        [f'{{"exception": "{RARE_ERROR}"}}'],
    ).fetchone()
    if stored == events and current:
        return None
    started = time.monotonic()
    connection.execute(f"TRUNCATE {events_table}, {traces_table}")
    parts = [Part(0, events // EVENTS_PER_TRANSACTION, datetime.now(UTC))]
    copy_store(connection, events_table, traces_table, parts)
    return time.monotonic() - started
