"""Reading the trace store: one transaction's events, recent transactions, search, related records.

Every query is bounded by an index: a transaction's events by (correlation_id, sequence), recent
transactions by the :class:`Trace` table (keyset pagination, no OFFSET), a task or request ID by
``hop_id``, an attribute value by the GIN index on PostgreSQL. The list's figures are aggregated for
the shown page only, so the list costs the same with a thousand or a hundred million events.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import reduce
from operator import or_
from typing import Any

from django.apps import apps
from django.db import connections, models
from django.db.models import Count, Max, Min, Q
from django.db.models.fields.json import KeyTransform
from django.db.models.lookups import Exact
from django.utils.dateparse import parse_datetime

from tracing_app.conf import app_settings
from tracing_app.traces.models import Trace, TraceEvent
from tracing_app.traces.timeline import describe, format_duration, status_tone

#: Kinds that end an attempt of a hop and carry its status and duration.
END_KINDS = ("request.finished", "task.retried", "task.succeeded", "task.failed")

_ATTRIBUTE_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_MAX_QUERY = 256


@dataclass
class TraceSummary:
    """One row of the list: the root hop's name, status and duration, and counts over the whole trace."""

    correlation_id: str
    started_at: datetime | None = None
    ended_at: datetime | None = None
    name: str = ""
    status: str = ""
    duration_ms: float | None = None
    hops: int = 0
    events: int = 0
    errors: int = 0

    @property
    def duration_label(self) -> str:
        return format_duration(self.duration_ms)

    @property
    def tone(self) -> str:
        return status_tone(self.status, bool(self.errors) and not self.status)


def events_of(correlation_id: str, *, limit: int | None = 0) -> tuple[list[TraceEvent], bool]:
    """The transaction's events in causal order and whether they were cut at ``limit``.

    ``limit`` defaults to ``TRACE_MAX_EVENTS_SHOWN``; None returns every event.
    """
    if limit == 0:
        limit = app_settings.TRACE_MAX_EVENTS_SHOWN
    events = (
        TraceEvent.objects.using(app_settings.TRACE_DATABASE)
        .filter(correlation_id=correlation_id)
        .order_by("sequence", "id")
    )
    if limit is None:
        return list(events), False
    rows = list(events[: limit + 1])
    return rows[:limit], len(rows) > limit


def recent(*, before: str = "", errors_only: bool = False) -> tuple[list[TraceSummary], str]:
    """A page of transactions, newest first, and the cursor of the next page ("" on the last one).

    ``before`` is the cursor a previous page returned. With ``errors_only``, transactions are those of
    the most recent error events instead.
    """
    size = app_settings.TRACE_ADMIN_PAGE_SIZE
    alias = app_settings.TRACE_DATABASE
    if errors_only:
        events = TraceEvent.objects.using(alias).filter(error=True)
        moment = parse_datetime(before) if before else None
        if moment is not None:
            events = events.filter(timestamp__lt=moment)
        found = (
            events.values("correlation_id")
            .annotate(last=Max("timestamp"))
            .order_by("-last")
            .values_list("correlation_id", "last")[: size + 1]
        )
        found = list(found)
        next_cursor = found[size - 1][1].isoformat() if len(found) > size else ""
        return summarize([cid for cid, _ in found[:size]]), next_cursor
    traces = Trace.objects.using(alias).order_by("-started_at", "-correlation_id")
    moment_text, _, last_id = before.partition("|")
    moment = parse_datetime(moment_text) if moment_text else None
    if moment is not None:
        traces = traces.filter(Q(started_at__lt=moment) | Q(started_at=moment, correlation_id__lt=last_id))
    page = list(traces[: size + 1])
    next_cursor = ""
    if len(page) > size:
        last = page[size - 1]
        next_cursor = f"{last.started_at.isoformat()}|{last.correlation_id}"
    return summarize([trace.correlation_id for trace in page[:size]]), next_cursor


def search(query: str) -> list[TraceSummary]:
    """Transactions matching ``query``, most recently active first.

    ``key=value`` matches events whose attributes hold that value under ``key`` (at the top level or
    among a task's keyword arguments), as a string or, when it looks like one, a number. Anything else
    is matched exactly against correlation IDs and hop IDs (request and task IDs).
    """
    query = query.strip()[:_MAX_QUERY]
    if not query:
        return []
    key, sep, value = query.partition("=")
    key, value = key.strip(), value.strip()
    if sep and _ATTRIBUTE_KEY.fullmatch(key) and "__" not in key:
        condition = attribute_condition(key, value)
    else:
        condition = Q(correlation_id=query) | Q(hop_id=query)
    found = (
        TraceEvent.objects.using(app_settings.TRACE_DATABASE)
        .filter(condition)
        .values("correlation_id")
        .annotate(last=Max("id"))
        .order_by("-last")
        .values_list("correlation_id", flat=True)[: app_settings.TRACE_ADMIN_PAGE_SIZE]
    )
    return summarize(list(found))


def attribute_condition(key: str, value: str) -> Q:
    """Events whose attribute ``key`` (or task keyword argument ``key``) equals ``value``."""
    candidates: list[Any] = [value]
    if re.fullmatch(r"-?\d{1,18}", value):
        candidates.append(int(value))
    if connections[app_settings.TRACE_DATABASE].vendor == "postgresql":
        # jsonb containment: served by the GIN index the migration creates.
        terms = [Q(attributes__contains={key: c}) for c in candidates]
        terms += [Q(attributes__contains={"kwargs": {key: c}}) for c in candidates]
    else:
        top = KeyTransform(key, "attributes")
        nested = KeyTransform(key, KeyTransform("kwargs", "attributes"))
        terms = [Q(Exact(top, c)) for c in candidates] + [Q(Exact(nested, c)) for c in candidates]
    return reduce(or_, terms)


def summarize(correlation_ids: Sequence[str]) -> list[TraceSummary]:
    """List rows for ``correlation_ids`` (kept in that order), from three index-bounded queries."""
    if not correlation_ids:
        return []
    events = TraceEvent.objects.using(app_settings.TRACE_DATABASE)
    summaries = {cid: TraceSummary(cid) for cid in correlation_ids}
    first_sequence: dict[str, int] = {}
    totals = (
        events.filter(correlation_id__in=correlation_ids)
        .values("correlation_id")
        .annotate(
            n=Count("id"),
            hops=Count("hop_id", distinct=True),
            errors=Count("id", filter=Q(error=True)),
            started=Min("timestamp"),
            ended=Max("timestamp"),
            first=Min("sequence"),
        )
        .order_by()
    )
    for row in totals:
        summary = summaries[row["correlation_id"]]
        summary.events, summary.hops, summary.errors = row["n"], row["hops"], row["errors"]
        summary.started_at, summary.ended_at = row["started"], row["ended"]
        first_sequence[row["correlation_id"]] = row["first"]
    if first_sequence:
        # The root hop is the one holding the transaction's earliest event. Plain IN lists (pairs are
        # matched here) keep the SQL short to build and still served by (correlation_id, sequence).
        firsts = (
            events.filter(correlation_id__in=list(first_sequence), sequence__in=set(first_sequence.values()))
            .only("correlation_id", "hop_id", "sequence", "kind", "name", "status", "attributes")
            .order_by("-id")
        )
        roots = {e.correlation_id: e for e in firsts if e.sequence == first_sequence[e.correlation_id]}
        root_hops = {cid: event.hop_id for cid, event in roots.items()}
        for cid, event in roots.items():
            summaries[cid].name = event.name or describe(event)
        ends = (
            events.filter(
                correlation_id__in=list(root_hops), hop_id__in=set(root_hops.values()), kind__in=END_KINDS
            )
            .only("correlation_id", "hop_id", "name", "status", "duration_ms")
            .order_by("sequence", "id")
        )
        for end in ends:
            if root_hops[end.correlation_id] == end.hop_id:
                summary = summaries[end.correlation_id]
                summary.status = end.status
                summary.duration_ms = end.duration_ms
                summary.name = end.name or summary.name
    return [summaries[cid] for cid in correlation_ids]


def idempotency_records(
    correlation_id: str, keys: Sequence[str] = (), limit: int = 50
) -> list[models.Model] | None:
    """The idempotency records the transaction created or replayed (``keys``), or None where that model
    is not installed."""
    try:
        model = apps.get_model("tracing_app", "IdempotencyRecord")
    except LookupError:
        return None
    fields = {field.name for field in model._meta.get_fields()}
    if "correlation_id" not in fields:
        return None
    order = "created_at" if "created_at" in fields else "pk"
    condition = Q(correlation_id=correlation_id) | Q(pk__in=list(keys)[:limit])
    return list(model._default_manager.filter(condition).order_by(order)[:limit])
