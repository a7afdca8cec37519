"""Merging a written batch's figures into the transactions' :class:`Trace` rows.

Runs in the recorder's writer (never on a request or task), inside the transaction that inserts the
batch's events: missing rows are created first (concurrent writers cannot both create one), then the
batch's rows are locked, both in correlation ID order (two writers never wait on each other in a circle),
merged, and written.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from django.db import transaction

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
    manager.bulk_create(
        [Trace(correlation_id=cid, started_at=found[cid].started_at) for cid in sorted(found)],
        ignore_conflicts=True,
    )
    rows = manager.select_for_update().filter(correlation_id__in=list(found)).order_by("correlation_id")
    changed = []
    for row in rows:
        figures = figures_of_row(row)
        figures.merge(found[row.correlation_id])
        write_figures(row, figures)
        changed.append(row)
    manager.bulk_update(changed, _FIELDS)


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


def write_figures(row: Trace, figures: Figures) -> None:
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
