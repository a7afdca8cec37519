"""Trace events of the HTTP edge: called by the middleware, plus Django's uncaught-exception signal.

The middleware calls :func:`started` for a sampled request and :func:`finished` for a sampled one or a
5xx, only while ``TRACE_ENABLED``: an unsampled request costs no call, and its events are recorded only
when the response is a 5xx or a view raised.
"""

from __future__ import annotations

import sys
from time import perf_counter
from typing import Any

from django.http import HttpRequest, HttpResponseBase

from tracing_app.conf import app_settings
from tracing_app.context import TraceContext, current
from tracing_app.traces.recorder import RECORDED_MARK, describe_exception, emit, mark_recorded


def started(request: HttpRequest, ctx: TraceContext) -> None:
    """The request reached the middleware (its context is not current yet)."""
    if _excluded(request):
        return
    meta = request.META
    attributes: dict[str, Any] = {"method": request.method, "path": request.path}
    incoming = meta.get(app_settings.header_meta_key)
    if incoming is not None and incoming != ctx.correlation_id:
        # A value the client sent but we did not adopt (untrusted or invalid): support asks about it.
        attributes["incoming_id"] = incoming
    user_agent = meta.get("HTTP_USER_AGENT")
    if user_agent:
        attributes["user_agent"] = user_agent[:256]
    emit(ctx, "request.started", attributes=attributes, owned=True)


def finished(request: HttpRequest, response: HttpResponseBase, ctx: TraceContext) -> None:
    """The response is about to leave; 5xx responses are errors, recorded even when unsampled."""
    status = response.status_code
    error = status >= 500
    if not error and _excluded(request):
        return
    began = getattr(request, "tracing_started", None)
    attributes: dict[str, Any] = {}
    match = getattr(request, "resolver_match", None)
    name = ""
    if match is not None:
        name = match.view_name or match._func_path
        attributes["route"] = match.route
        if match.kwargs:
            attributes["kwargs"] = match.kwargs
    if error:
        attributes["method"] = request.method
        attributes["path"] = request.path
    emit(
        ctx,
        "request.finished",
        name=name,
        status=str(status),
        duration_ms=None if began is None else (perf_counter() - began) * 1000,
        attributes=attributes,
        error=error,
        owned=True,
    )


def _excluded(request: HttpRequest) -> bool:
    prefixes = app_settings.TRACE_EXCLUDE_PATHS
    return bool(prefixes) and request.path.startswith(tuple(prefixes))


def on_got_request_exception(sender: Any = None, request: HttpRequest | None = None, **kwargs: Any) -> None:
    """A view raised: record the exception (Django sends this inside its ``except`` block)."""
    ctx = current()
    exc = sys.exc_info()[1]
    if ctx is None or exc is None or not app_settings.TRACE_ENABLED or getattr(exc, RECORDED_MARK, False):
        return
    match = getattr(request, "resolver_match", None) if request is not None else None
    emit(
        ctx,
        "error",
        name=(match.view_name or match._func_path) if match is not None else "",
        attributes=describe_exception(exc),
        error=True,
    )
    mark_recorded(exc)
