"""Reading the trace store: one transaction's events, recent transactions, search, related records.

Every query is bounded by an index: a transaction's events by (correlation_id, sequence), recent
transactions and every list filter by the :class:`Trace` table's indexes (keyset pagination, no OFFSET),
a task or request ID by ``hop_id``, an attribute value by the GIN index on PostgreSQL, free text by the
trigram indexes on the event's name and on its searched attributes. The list shows each transaction's
stored figures, so it costs the same with a thousand or a hundred million events.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import reduce
from operator import or_
from typing import Any

from django.apps import apps
from django.db import connections, models
from django.db.models import Max, Q
from django.db.models.fields.json import KeyTransform
from django.db.models.lookups import Exact
from django.utils.dateparse import parse_datetime

from tracing_app.conf import app_settings
from tracing_app.traces import summary
from tracing_app.traces.models import Trace, TraceEvent
from tracing_app.traces.timeline import format_duration

_ATTRIBUTE_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_MAX_QUERY = 256
_ID_LIKE = re.compile(r"[A-Za-z0-9._:-]+")
# The searched attributes joined by spaces, the expression one of the migrations' trigram indexes covers
# (PostgreSQL; the other covers the name). Free text is matched against the name and these, joined.
_ATTRIBUTE_TEXT = (
    "(coalesce(attributes->>'message', '') || ' ' || coalesce(attributes->>'exception', '')"
    " || ' ' || coalesce(attributes->>'exception_message', '') || ' ' || coalesce(attributes->>'args', ''))"
)
_SEARCH_TEXT = f"(name || ' ' || {_ATTRIBUTE_TEXT})"
# Rows looked at when free text matches many events: the newest ones, enough for a page of transactions.
_TEXT_SCAN = 1000


@dataclass
class TraceSummary:
    """One row of the list: the transaction's stored figures (see :mod:`tracing_app.traces.summary`)."""

    trace: Trace

    def __getattr__(self, name: str) -> Any:
        return getattr(self.trace, name)

    @property
    def duration_label(self) -> str:
        return format_duration(self.trace.duration_ms)

    @property
    def tone(self) -> str:
        return outcome_tone(self.trace.outcome)

    @property
    def age_label(self) -> str:
        return time_ago(self.trace.started_at)

    @property
    def started_utc(self) -> str:
        return self.trace.started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def time_ago(moment: datetime, now: datetime | None = None) -> str:
    """``"12 s ago"``, ``"5 min ago"``, ``"3 h ago"``, ``"2 d ago"``: how long ago, at a glance."""
    seconds = max(((now or datetime.now(UTC)) - moment).total_seconds(), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


@dataclass
class ListFilters:
    """What the list shows: every field empty or False shows recent transactions, polls hidden."""

    outcome: str = ""
    entry_point: str = ""
    min_ms: float | None = None
    max_ms: float | None = None
    since: datetime | None = None
    until: datetime | None = None
    include_reads: bool = False
    errors_only: bool = False

    def apply(self, traces: models.QuerySet[Trace]) -> models.QuerySet[Trace]:
        if self.errors_only:
            traces = traces.filter(outcome__in=summary.WITH_ERRORS)
        elif self.outcome in summary.OUTCOMES:
            traces = traces.filter(outcome=self.outcome)
        if not (self.include_reads or self.errors_only or self.outcome):
            traces = traces.filter(single_read=False)
        if self.entry_point:
            traces = traces.filter(entry_point=self.entry_point)
        if self.min_ms is not None:
            traces = traces.filter(duration_ms__gte=self.min_ms)
        if self.max_ms is not None:
            traces = traces.filter(duration_ms__lte=self.max_ms)
        if self.since is not None:
            traces = traces.filter(started_at__gte=self.since)
        if self.until is not None:
            traces = traces.filter(started_at__lt=self.until)
        return traces


def outcome_tone(outcome: str) -> str:
    """How an outcome reads at a glance: ``ok``, ``warn``, ``bad`` or ``neutral``."""
    return {
        summary.OK: "ok",
        summary.FAILED: "bad",
        summary.COMPENSATED: "warn",
        summary.REFUSED: "warn",
    }.get(outcome, "neutral")


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


def stored_trace(correlation_id: str) -> Trace | None:
    return Trace.objects.using(app_settings.TRACE_DATABASE).filter(pk=correlation_id).first()


def recent(filters: ListFilters | None = None, *, before: str = "") -> tuple[list[TraceSummary], str]:
    """A page of transactions, newest first, and the cursor of the next page ("" on the last one).

    ``before`` is the cursor a previous page returned (keyset pagination: no OFFSET).
    """
    size = app_settings.TRACE_ADMIN_PAGE_SIZE
    traces = (filters or ListFilters()).apply(
        Trace.objects.using(app_settings.TRACE_DATABASE).order_by("-started_at", "-correlation_id")
    )
    moment_text, _, last_id = before.partition("|")
    moment = parse_datetime(moment_text) if moment_text else None
    if moment is not None:
        traces = traces.filter(Q(started_at__lt=moment) | Q(started_at=moment, correlation_id__lt=last_id))
    page = list(traces[: size + 1])
    next_cursor = ""
    if len(page) > size:
        last = page[size - 1]
        next_cursor = f"{last.started_at.isoformat()}|{last.correlation_id}"
    return [TraceSummary(trace) for trace in page[:size]], next_cursor


def entry_points(limit: int = 200, recent_count: int = 1000) -> list[str]:
    """Entry points of recent transactions, for the list's filter suggestions (one index range)."""
    names = (
        Trace.objects.using(app_settings.TRACE_DATABASE)
        .order_by("-started_at")
        .values_list("entry_point", flat=True)[:recent_count]
    )
    return sorted({name for name in names if name})[:limit]


def search(query: str) -> list[TraceSummary]:
    """Transactions matching ``query``, most recently active first.

    ``key=value`` matches events whose attributes hold that value under ``key`` (at the top level or
    among a task's keyword arguments), as a string or, when it looks like one, a number. A single word
    is matched against correlation IDs and hop IDs (request and task IDs) in any case; any other text,
    and a word no ID matches, against event and task names, error messages and task arguments.
    """
    query = query.strip()[:_MAX_QUERY]
    if not query:
        return []
    key, sep, value = query.partition("=")
    key, value = key.strip(), value.strip()
    events = TraceEvent.objects.using(app_settings.TRACE_DATABASE)
    if sep and _ATTRIBUTE_KEY.fullmatch(key) and "__" not in key:
        return _newest(events.filter(attribute_condition(key, value)))
    if _ID_LIKE.fullmatch(query):
        variants = sorted({query, query.upper(), query.lower()})
        found = _newest(events.filter(Q(correlation_id__in=variants) | Q(hop_id__in=variants)))
        if found:
            return found
    return _newest(text_events(query), scan=_TEXT_SCAN)


def text_events(text: str) -> models.QuerySet[TraceEvent]:
    """Events whose name, error message or task arguments contain ``text`` (any case)."""
    events = TraceEvent.objects.using(app_settings.TRACE_DATABASE)
    if connections[app_settings.TRACE_DATABASE].vendor == "postgresql":
        # The fields are joined by spaces, so a run of the text without spaces lies inside one of them: its
        # longest run is looked up in the name's and the attributes' trigram indexes (one index over both
        # would read, for a rare word, every entry of a trigram that common names share), and only a text
        # with spaces is then checked whole. The expressions are constants; the text goes in as parameters.
        run = max(text.split(" "), key=len)
        where = [f"(name ILIKE %s OR {_ATTRIBUTE_TEXT} ILIKE %s)"]
        params = [_contains(run), _contains(run)]
        if run != text:
            where.append(f"{_SEARCH_TEXT} ILIKE %s")
            params.append(_contains(text))
        return events.extra(where=where, params=params)  # noqa: S610
    return events.filter(Q(name__icontains=text) | Q(attributes__icontains=text))


def _contains(text: str) -> str:
    """An ILIKE pattern matching ``text`` anywhere, its wildcards taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _newest(events: models.QuerySet[TraceEvent], scan: int | None = None) -> list[TraceSummary]:
    """The transactions of ``events``, most recently active first (a page of them)."""
    size = app_settings.TRACE_ADMIN_PAGE_SIZE
    if scan is None:
        found = list(
            events.values("correlation_id")
            .annotate(last=Max("id"))
            .order_by("-last")
            .values_list("correlation_id", flat=True)[:size]
        )
    else:
        # Free text may match most events: look at the newest matches only, in one bounded scan.
        found = list(dict.fromkeys(events.order_by("-id").values_list("correlation_id", flat=True)[:scan]))[
            :size
        ]
    return summarize(found)


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
    """List rows for ``correlation_ids`` (kept in that order), from their stored figures."""
    if not correlation_ids:
        return []
    rows = Trace.objects.using(app_settings.TRACE_DATABASE).in_bulk(list(correlation_ids))
    return [TraceSummary(rows[cid]) for cid in correlation_ids if cid in rows]


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
