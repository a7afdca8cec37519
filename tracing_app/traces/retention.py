"""Retention: how long trace events are kept, and the batched purge of older ones."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Exists, OuterRef, QuerySet
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
    """Delete events older than ``older_than``, ``batch_size`` rows per statement, then the traces left
    without events. Short statements keep locks and replication lag small on a busy table."""
    alias = app_settings.TRACE_DATABASE
    size = batch_size or app_settings.TRACE_PURGE_BATCH_SIZE
    if size < 1:
        raise ValueError("batch size must be at least 1")
    cutoff = timezone.now() - older_than
    old_events = TraceEvent.objects.using(alias).filter(timestamp__lt=cutoff)
    orphans = (
        Trace.objects.using(alias)
        .filter(started_at__lt=cutoff)
        .exclude(Exists(TraceEvent.objects.using(alias).filter(correlation_id=OuterRef("pk"))))
    )
    if dry_run:
        surviving = TraceEvent.objects.using(alias).filter(
            correlation_id=OuterRef("pk"), timestamp__gte=cutoff
        )
        traces = Trace.objects.using(alias).filter(started_at__lt=cutoff).exclude(Exists(surviving)).count()
        return PurgeResult(cutoff, old_events.count(), traces)
    events = _delete_in_batches(old_events, size)
    traces = _delete_in_batches(orphans, size)
    # Drop counts go with the events they are about.
    DroppedEvents.objects.using(alias).filter(updated_at__lt=cutoff).delete()
    return PurgeResult(cutoff, events, traces)


def _delete_in_batches(queryset: QuerySet[Any], size: int) -> int:
    deleted = 0
    model = queryset.model
    while True:
        keys = list(queryset.order_by().values_list("pk", flat=True)[:size])
        if not keys:
            return deleted
        count, _ = model._default_manager.using(queryset.db).filter(pk__in=keys).delete()
        deleted += count
