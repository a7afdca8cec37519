"""A transaction's headline: its outcome, duration and counts, derived from every hop's events.

The same figures are added up in two places: by the recorder for each batch it writes (merged into the
:class:`~tracing_app.traces.models.Trace` row, so the list filters on indexed columns) and over all of a
transaction's events for the trace page and ``manage.py trace``. Figures are sums and extremes, so a
transaction's events may arrive in any number of batches, from any number of processes, in any order.

Outcome, in this order: an error (any event recorded as one: a failed task, a 5xx, an uncaught
exception, an ERROR log record) makes it ``failed``, or ``compensated`` once a compensation task (see
``TRACE_COMPENSATION_TASKS``) has succeeded; otherwise a hop still open or a task still queued makes it
``in progress``; otherwise an entry request answered with a 4xx makes it ``refused``; otherwise ``ok``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from tracing_app.conf import app_settings

OK = "ok"
FAILED = "failed"
COMPENSATED = "compensated"
IN_PROGRESS = "in progress"
REFUSED = "refused"
#: Every outcome, in the order the list's filter offers them.
OUTCOMES = (OK, FAILED, COMPENSATED, IN_PROGRESS, REFUSED)
#: Outcomes of transactions that recorded an error: the list's "With errors" tab.
WITH_ERRORS = (FAILED, COMPENSATED)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_STARTS = frozenset({"request.started", "task.started"})
_ENDS = frozenset({"request.finished", "task.retried", "task.succeeded", "task.failed"})
_ENTRY_KINDS = frozenset({"request.started", "request.finished", "task.started"})


class EventLike(Protocol):
    """What the figures read of an event: a stored ``TraceEvent`` or a row on its way to the table."""

    @property
    def correlation_id(self) -> str: ...

    @property
    def hop_id(self) -> str: ...

    @property
    def sequence(self) -> int: ...

    @property
    def kind(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def status(self) -> str: ...

    @property
    def error(self) -> bool: ...

    @property
    def timestamp(self) -> datetime: ...

    @property
    def attributes(self) -> Any: ...


@dataclass
class Entry:
    """The hop that opened the transaction (its earliest event): what the list calls the entry point."""

    hop_id: str = ""
    sequence: int | None = None
    name: str = ""
    method: str = ""
    status: str = ""

    def fill(self, other: Entry) -> None:
        """Take ``other``'s values for this hop where ours are missing (its end came in a later batch)."""
        self.name = other.name or self.name
        self.method = self.method or other.method
        self.status = other.status or self.status


@dataclass
class Figures:
    """Sums and extremes over some of one transaction's events; :meth:`merge` adds two together."""

    events: int = 0
    requests: int = 0
    tasks: int = 0
    retries: int = 0
    errors: int = 0
    open_hops: int = 0
    queued: int = 0
    compensations: int = 0
    started_at: datetime | None = None
    ended_at: datetime | None = None
    entry: Entry = field(default_factory=Entry)
    #: Every hop that could be the entry, by hop ID (not stored): a later batch may hold the end of the
    #: stored entry hop while another hop has its earliest event.
    candidates: dict[str, Entry] = field(default_factory=dict, repr=False)

    @property
    def outcome(self) -> str:
        if self.errors:
            return COMPENSATED if self.compensations else FAILED
        if self.open_hops > 0 or self.queued > 0:
            return IN_PROGRESS
        if self.entry.status[:1] == "4":
            return REFUSED
        return OK

    @property
    def duration_ms(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds() * 1000

    @property
    def single_read(self) -> bool:
        """One safe-method request that went without error, and nothing else (a poll, a page view):
        hidden from the list by default."""
        return (
            self.requests <= 1 and self.tasks == 0 and not self.errors and self.entry.method in SAFE_METHODS
        )

    def merge(self, other: Figures) -> None:
        for name in ("events", "requests", "tasks", "retries", "errors", "open_hops", "queued"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.compensations += other.compensations
        if other.started_at is not None and (self.started_at is None or other.started_at < self.started_at):
            self.started_at = other.started_at
        if other.ended_at is not None and (self.ended_at is None or other.ended_at > self.ended_at):
            self.ended_at = other.ended_at
        mine, theirs = self.entry, other.entry
        same_hop = other.candidates.get(mine.hop_id)
        if same_hop is not None and mine.sequence is not None:
            mine.fill(same_hop)
        if theirs.sequence is not None and (mine.sequence is None or theirs.sequence < mine.sequence):
            self.entry = theirs


def tally(events: Iterable[EventLike]) -> dict[str, Figures]:
    """The figures of each transaction among ``events`` (any order, any mix of transactions)."""
    found: dict[str, _Tally] = {}
    for event in events:
        counter = found.get(event.correlation_id)
        if counter is None:
            counter = found[event.correlation_id] = _Tally()
        counter.add(event)
    return {cid: counter.result() for cid, counter in found.items()}


def figures_of(events: Iterable[EventLike]) -> Figures:
    """The figures of one transaction's events."""
    total = Figures()
    for figures in tally(events).values():
        total.merge(figures)
    return total


class _Tally:
    __slots__ = ("entries", "failed_hops", "figures")

    def __init__(self) -> None:
        self.figures = Figures()
        self.entries: dict[str, Entry] = {}
        # Hops with an error already counted: their 5xx response restates it, and is not counted again.
        self.failed_hops: set[str] = set()

    def add(self, event: EventLike) -> None:
        f = self.figures
        kind = event.kind
        f.events += 1
        moment = event.timestamp
        if f.started_at is None or moment < f.started_at:
            f.started_at = moment
        if f.ended_at is None or moment > f.ended_at:
            f.ended_at = moment
        attributes = event.attributes if isinstance(event.attributes, dict) else {}
        if kind in _STARTS:
            f.open_hops += 1
        elif kind in _ENDS:
            f.open_hops -= 1
        if kind == "request.started":
            f.requests += 1
        elif kind == "task.started":
            f.queued -= 1
            if not attributes.get("retries"):
                f.tasks += 1
        elif kind == "task.queued" or (kind == "task.published" and not attributes.get("outbox")):
            # A task from the outbox waits from the commit that queued it, before the broker has it.
            f.queued += 1
        elif kind == "task.retried":
            f.retries += 1
        elif kind == "task.failed" and attributes.get("requeued"):
            # Its worker died and the broker delivers it again: a retry, not the transaction's failure.
            # Its queue and task counts stay as they are: the dead process's own events (its start) are
            # often lost with it.
            f.retries += 1
            return
        elif kind == "task.succeeded" and is_compensation(event.name):
            f.compensations += 1
        if event.error and not (kind == "request.finished" and event.hop_id in self.failed_hops):
            f.errors += 1
            self.failed_hops.add(event.hop_id)
        if kind in _ENTRY_KINDS:
            self._note_entry(event, attributes)

    def _note_entry(self, event: EventLike, attributes: dict[str, Any]) -> None:
        entry = self.entries.get(event.hop_id)
        if entry is None:
            entry = self.entries[event.hop_id] = Entry(event.hop_id, event.sequence)
        entry.sequence = min(entry.sequence or event.sequence, event.sequence)
        if event.kind == "request.started":
            entry.method = str(attributes.get("method", ""))[:16]
            entry.name = entry.name or f"{entry.method} {attributes.get('path', '')}".strip()
        elif event.kind == "request.finished":
            entry.name = event.name or entry.name
            entry.status = event.status
            entry.method = entry.method or str(attributes.get("method", ""))[:16]
        elif event.name:
            entry.name = event.name

    def result(self) -> Figures:
        if self.entries:
            self.figures.entry = min(self.entries.values(), key=lambda e: e.sequence or 0)
            self.figures.candidates = self.entries
        return self.figures


def is_compensation(task_name: str) -> bool:
    """Whether ``task_name`` names a compensation task (``TRACE_COMPENSATION_TASKS``, by substring)."""
    lowered = task_name.lower()
    return any(word in lowered for word in app_settings.TRACE_COMPENSATION_TASKS)
