"""The admin's "Traces": recent transactions, search, and one transaction's whole story on one page.

Only active staff reach it (``admin_view``), and only those with the ``tracing_app.view_trace``
permission see anything (superusers have it). Nothing can be added, changed or deleted here; old
events go with ``manage.py purge_traces``. Every value shown comes from requests and tasks, so the
templates never mark anything safe: Django's autoescaping handles IDs, headers and task arguments.

URL names (namespace ``admin``): ``tracing_app_trace_changelist`` (the list, ``?q=`` to search; filters
``outcome``, ``entry``, ``min_ms``, ``max_ms``, ``since``, ``until``, ``reads=1``, ``errors=1``) and
``tracing_app_trace_detail`` (one transaction: ``reverse("admin:tracing_app_trace_detail",
args=[correlation_id])``).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from tracing_app.ids import minted_at
from tracing_app.traces import drops, queries, summary, timeline
from tracing_app.traces.links import related_links
from tracing_app.traces.models import Trace
from tracing_app.traces.rollup import figures_of_row


@admin.register(Trace)
class TraceAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("", self.admin_site.admin_view(self.changelist_view), name=f"{prefix}_changelist"),
            path(
                "<path:correlation_id>/",
                self.admin_site.admin_view(self.trace_view),
                name=f"{prefix}_detail",
            ),
        ]

    def _context(self, request: HttpRequest, title: str) -> dict[str, Any]:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "has_view_permission": True,
        }

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        context = self._context(request, "Traces")
        query = request.GET.get("q", "").strip()
        before = request.GET.get("before", "")
        filters = list_filters(request.GET)
        next_cursor = ""
        if query:
            summaries = queries.search(query)
            if len(summaries) == 1 and summaries[0].correlation_id.upper() == query.upper():
                return HttpResponseRedirect(self.trace_url(summaries[0].correlation_id))
        else:
            summaries, next_cursor = queries.recent(filters, before=before)
        params = request.GET.copy()
        params.pop("before", None)
        context.update(
            query=query,
            filters=filters,
            filtering=params.urlencode(),
            outcomes=summary.OUTCOMES,
            entry_points=queries.entry_points(),
            errors_only=filters.errors_only,
            summaries=[(item, self.trace_url(item.correlation_id)) for item in summaries],
            next_cursor=next_cursor,
            paged=bool(before),
            dropped_events=drops.total(),
        )
        return TemplateResponse(request, "tracing_app/admin/trace_list.html", context)

    def trace_view(self, request: HttpRequest, correlation_id: str) -> HttpResponse:
        context = self._context(request, f"Trace {correlation_id}")
        events, truncated = queries.events_of(correlation_id)
        trace = timeline.build(correlation_id, events, truncated=truncated)
        if truncated:
            stored = queries.stored_trace(correlation_id)
            if stored is not None and stored.events:
                trace.figures = figures_of_row(stored)
        replayed = []
        for row in trace.rows:
            if row.event.kind == "idempotent.replay" and isinstance(row.event.attributes, dict):
                first = row.event.attributes.get("first_correlation_id")
                if isinstance(first, str) and first and first != correlation_id:
                    row.link = self.trace_url(first)
                key = row.event.attributes.get("key")
                if isinstance(key, str):
                    replayed.append(key)
        context.update(
            correlation_id=correlation_id,
            minted_at=minted_at(correlation_id),
            trace=trace,
            related=related_links(events),
            idempotency=self._idempotency(request, correlation_id, replayed),
            list_url=reverse(f"{self.admin_site.name}:tracing_app_trace_changelist"),
        )
        status = 200 if events else 404
        return TemplateResponse(request, "tracing_app/admin/trace_detail.html", context, status=status)

    def trace_url(self, correlation_id: str) -> str:
        return reverse(f"{self.admin_site.name}:tracing_app_trace_detail", args=[correlation_id])

    def _idempotency(
        self, request: HttpRequest, correlation_id: str, keys: list[str]
    ) -> dict[str, Any] | None:
        """Related idempotency records with admin links where the user may follow them; None if absent."""
        records = queries.idempotency_records(correlation_id, keys)
        if records is None:
            return None
        rows = []
        for record in records:
            opts = record._meta
            model_admin = self.admin_site._registry.get(type(record))
            url = ""
            if model_admin is not None and model_admin.has_view_or_change_permission(request, record):
                try:
                    url = reverse(
                        f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_change",
                        args=[record.pk],
                    )
                except NoReverseMatch:
                    url = ""
            rows.append({"record": record, "url": url})
        return {"rows": rows}


def list_filters(params: QueryDict) -> queries.ListFilters:
    """The list's filters from its query string; values that do not parse are ignored."""
    return queries.ListFilters(
        outcome=params.get("outcome", "") if params.get("outcome") in summary.OUTCOMES else "",
        entry_point=params.get("entry", "").strip()[:255],
        min_ms=_number(params.get("min_ms")),
        max_ms=_number(params.get("max_ms")),
        since=_moment(params.get("since")),
        until=_moment(params.get("until")),
        include_reads=params.get("reads") == "1",
        errors_only=params.get("errors") == "1",
    )


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def _moment(text: str | None) -> datetime | None:
    """A ``datetime-local`` value (``2026-11-28T21:30``) in the current time zone, or ISO 8601."""
    try:
        moment = parse_datetime(text.strip()) if text else None
    except ValueError:
        return None
    if moment is not None and timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment
