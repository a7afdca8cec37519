"""The purge walks the time index one slice per statement: it removes exactly the expired rows, keeps
the rest and copes with many rows at one moment (on SQLite too: test_store_on_sqlite.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tracing_app.traces.models import Trace, TraceEvent
from tracing_app.traces.retention import purge

# PostgreSQL: its rollups and batched deletes; the SQLite path runs again in test_store_on_sqlite.py.
pytestmark = [pytest.mark.services, pytest.mark.django_db]

RETENTION = timedelta(days=7)


def _store(correlation_id: str, *moments: datetime) -> None:
    TraceEvent.objects.bulk_create(
        TraceEvent(correlation_id=correlation_id, hop_id=correlation_id, sequence=n, kind="log", timestamp=m)
        for n, m in enumerate(moments, start=1)
    )
    Trace.objects.create(correlation_id=correlation_id, started_at=min(moments), ended_at=max(moments))


def _kept() -> set[tuple[str, int]]:
    return set(TraceEvent.objects.values_list("correlation_id", "sequence"))


@pytest.mark.parametrize("batch_size", [1, 2, 3, 1000])
def test_removes_exactly_the_expired_rows_and_keeps_the_rest(batch_size):
    now = timezone.now()
    for n in range(7):
        _store(f"OLD{n}", now - timedelta(days=10, minutes=n), now - timedelta(days=9, minutes=n))
    _store("EDGE", now - RETENTION - timedelta(seconds=30), now - RETENTION + timedelta(minutes=5))
    _store("NEW", now - timedelta(days=1), now)

    result = purge(RETENTION, batch_size=batch_size)

    assert (result.events, result.traces) == (15, 7)
    assert _kept() == {("EDGE", 2), ("NEW", 1), ("NEW", 2)}
    assert set(Trace.objects.values_list("correlation_id", flat=True)) == {"EDGE", "NEW"}


def test_many_rows_at_one_moment_go_in_one_statement_and_the_walk_ends():
    moment = timezone.now() - timedelta(days=30)
    for n in range(6):
        _store(f"SAME{n}", moment, moment)
    # Traces that started at that same moment but still have recent events stay.
    for n in range(4):
        _store(f"LONG{n}", moment, timezone.now())

    result = purge(RETENTION, batch_size=2)

    assert (result.events, result.traces) == (16, 6)
    assert _kept() == {(f"LONG{n}", 2) for n in range(4)}
    assert set(Trace.objects.values_list("correlation_id", flat=True)) == {f"LONG{n}" for n in range(4)}


def test_each_statement_starts_where_the_previous_slice_ended():
    now = timezone.now()
    for n in range(12):
        _store(f"OLD{n:02}", now - timedelta(days=20, minutes=n))

    with CaptureQueriesContext(connection) as queries:
        assert purge(RETENTION, batch_size=4).events == 12

    events_table = connection.ops.quote_name(TraceEvent._meta.db_table)
    deletes = [
        q["sql"] for q in queries.captured_queries if q["sql"].startswith(f"DELETE FROM {events_table}")
    ]
    assert len(deletes) == 3
    # Only the first slice is open at its start: later ones never look at rows already deleted.
    assert [">=" in sql for sql in deletes] == [False, True, True]


def test_dry_run_counts_what_the_purge_then_deletes():
    now = timezone.now()
    _store("OLD", now - timedelta(days=8), now - timedelta(days=8))
    _store("MIXED", now - timedelta(days=8), now)

    planned = purge(RETENTION, dry_run=True)
    assert TraceEvent.objects.count() == 4
    done = purge(RETENTION)

    assert (planned.events, planned.traces) == (done.events, done.traces) == (3, 1)
