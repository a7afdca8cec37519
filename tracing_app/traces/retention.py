"""Retention: how long trace events are kept, and the batched purge of older ones."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_duration as parse_django_duration

from tracing_app.conf import app_settings
from tracing_app.traces.models import DroppedEvents, Trace, TraceEvent

_UNITS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_SHORT = re.compile(r"(?:(\d+)([wdhms]))+")
_PART = re.compile(r"(\d+)([wdhms])")


def parse_duration(value: str | int | float | timedelta) -> timedelta:
    """A duration from a timedelta, seconds, ``"7d"``/``"12h"``/``"1d12h"``/``"90m"``/``"2w"``, or ISO 8601
    (``"P7D"``) and Django's ``"7 00:00:00"``. Raises ``ValueError`` saying what is accepted."""
    if isinstance(value, timedelta):
        duration = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        duration = timedelta(seconds=value)
    elif isinstance(value, str) and _SHORT.fullmatch(value.strip().lower()):
        text = value.strip().lower()
        duration = timedelta(seconds=sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(text)))
    else:
        parsed = parse_django_duration(value) if isinstance(value, str) else None
        if parsed is None:
            raise ValueError(
                f"not a duration: {value!r}; use e.g. 7d, 12h, 1d12h, 90m, 2w, a number of seconds, "
                "or ISO 8601 such as P7D"
            )
        duration = parsed
    if duration <= timedelta(0):
        raise ValueError(f"a retention period must be positive, not {value!r}")
    return duration


@dataclass
class PurgeResult:
    cutoff: datetime
    events: int
    traces: int


def retention() -> timedelta:
    """``TRACE_RETENTION`` as a timedelta."""
    return parse_duration(app_settings.TRACE_RETENTION)


def purge(older_than: timedelta, *, batch_size: int | None = None, dry_run: bool = False) -> PurgeResult:
    """Delete events older than ``older_than``, then the traces left without events, oldest first and
    about ``batch_size`` rows per statement.

    Each statement deletes one time slice found on the time index, and the next slice starts where it
    ended, so no statement scans rows an earlier one deleted. Each commits on its own: locks stay short
    and concurrent writers, which only insert new rows, never wait on the purge.
    """
    alias = app_settings.TRACE_DATABASE
    size = batch_size or app_settings.TRACE_PURGE_BATCH_SIZE
    if size < 1:
        raise ValueError("batch size must be at least 1")
    cutoff = timezone.now() - older_than
    all_events = TraceEvent.objects.using(alias)
    # A trace whose last event is past the cutoff has none left; only the others are looked up.
    without_events = Q(ended_at__lt=cutoff) | Q(~Exists(all_events.filter(correlation_id=OuterRef("pk"))))
    if dry_run:
        surviving = all_events.filter(correlation_id=OuterRef("pk"), timestamp__gte=cutoff)
        traces = Trace.objects.using(alias).filter(started_at__lt=cutoff).exclude(Exists(surviving)).count()
        return PurgeResult(cutoff, all_events.filter(timestamp__lt=cutoff).count(), traces)
    events = _delete_by_time(all_events, "timestamp", cutoff, size)
    traces = _delete_by_time(Trace.objects.using(alias), "started_at", cutoff, size, only=without_events)
    # Drop counts go with the events they are about.
    DroppedEvents.objects.using(alias).filter(updated_at__lt=cutoff).delete()
    return PurgeResult(cutoff, events, traces)


def _delete_by_time(
    rows: QuerySet[Any], field: str, cutoff: datetime, size: int, *, only: Q | None = None
) -> int:
    """Delete ``rows`` whose ``field`` is before ``cutoff`` (and that match ``only``), one slice of about
    ``size`` rows of ``field``'s index per statement."""
    deleted = 0
    start: datetime | None = None
    # After a slice of rows sharing one moment, the next slice starts strictly after it.
    start_after = False
    while True:
        window = rows.filter(**{f"{field}__lt": cutoff})
        if start is not None:
            window = window.filter(**{f"{field}__gt" if start_after else f"{field}__gte": start})
        bound = list(window.order_by(field).values_list(field, flat=True)[size : size + 1])
        end = bound[0] if bound else cutoff
        # More than ``size`` rows at one moment: they go in one statement.
        start_after = end == start
        doomed = window.filter(**{field: end} if start_after else {f"{field}__lt": end})
        if only is not None:
            doomed = doomed.filter(only)
        count, _ = doomed.delete()
        deleted += count
        if not bound:
            return deleted
        start = end
