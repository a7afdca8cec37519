"""The HTTP edge: accept or mint the correlation ID, make it current, put it on the response."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase
from django.utils.log import log_response

from tracing_app import ids, otel
from tracing_app.conf import app_settings
from tracing_app.context import TraceContext, activate, deactivate, from_carrier
from tracing_app.traces import http_events

__all__ = [
    "CorrelationIdMiddleware",
    "TracedHttpRequest",
]

logger = logging.getLogger("tracing_app.middleware")
# The server's own access line (runserver's "django.server", gunicorn's) is written after the response,
# outside the transaction; this one is written inside it, so it carries the IDs.
access_logger = logging.getLogger("tracing_app.access")


class TracedHttpRequest(HttpRequest):
    """For type hints in views: a request once the edge saw it, with its correlation ID and start time."""

    correlation_id: str
    tracing_started: float


class CorrelationIdMiddleware:
    """Binds one correlation ID to each request; works under WSGI and ASGI without thread hops.

    Place it first in ``MIDDLEWARE`` (after OpenTelemetry's, which Django instrumentation inserts
    itself) so every other middleware, every log line and the 500 handler run inside the transaction.
    It never reads ``request.user`` or the session, so it adds no ``Vary: Cookie``.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        ctx = self.start(request)
        token = activate(ctx)
        try:
            response = self.get_response(request)
            self.finish(request, response, ctx)
        finally:
            deactivate(token)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        ctx = self.start(request)
        token = activate(ctx)
        try:
            get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = self.get_response
            response = await get_response(request)
            self.finish(request, response, ctx)
        finally:
            deactivate(token)
        return response

    @staticmethod
    def start(request: HttpRequest) -> TraceContext:
        """Build the request's context from its headers; invalid input is dropped, never echoed."""
        incoming = request.META.get(app_settings.header_meta_key)
        if incoming is None:
            for key in app_settings.alternate_meta_keys:
                incoming = request.META.get(key)
                if incoming is not None:
                    break
        if incoming is None:
            ctx = from_carrier(None, "http")
        elif not ids.is_valid_id(incoming):
            ctx = from_carrier(None, "http")
            # Logged before the context is current, so the new ID is passed along explicitly.
            logger.info(
                "Rejected incoming correlation ID %s",
                ids.safe_repr(incoming),
                extra={"correlation_id": ctx.correlation_id, "causation_id": app_settings.LOG_EMPTY_VALUE},
            )
        elif app_settings.TRUST_INCOMING:
            # The request stays a hop of its own inside the caller's transaction.
            ctx = from_carrier(incoming, hop_id=ids.new_id(), origin="http-incoming")
        else:
            ctx = from_carrier(None, causation_id=incoming, origin="http")
        if otel.edge is not None:
            # Inside OpenTelemetry's server span: adopt its sampling decision, attach the ID as baggage.
            otel.edge.enter(request, ctx)
        # Set on the request as TracedHttpRequest declares them (typing.cast would cost a call per request).
        request.correlation_id = ctx.correlation_id  # type: ignore[attr-defined]
        request.tracing_started = perf_counter()  # type: ignore[attr-defined]
        if ctx.sampled and app_settings.TRACE_ENABLED:
            http_events.started(request, ctx)
        return ctx

    @staticmethod
    def finish(request: HttpRequest, response: HttpResponseBase, ctx: TraceContext) -> None:
        if response.status_code >= 400 and not getattr(response, "_has_been_logged", False):
            # Django logs error responses that a view returned (not raised) after the middleware chain,
            # outside the transaction; logging them here gives that line the correlation ID.
            # log_response reads the status code alone, which every kind of response has.
            log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request)  # type: ignore[arg-type]
        store_key = app_settings.header_store_key
        if store_key is None:
            response[app_settings.HEADER] = ctx.correlation_id
        else:
            # Straight into Django's header store: ``response[name] = value`` re-validates and re-encodes
            # both on every request, the largest part of the ID-only edge's cost, for a name checked once
            # (conf) and a value that is printable ASCII by construction (minted, or ids.is_valid_id).
            response.headers._store[store_key] = (app_settings.HEADER, ctx.correlation_id)
        if app_settings.ACCESS_LOG:
            access_logger.info(
                '"%s %s" %s (%.1f ms)',
                request.method,
                request.get_full_path(),
                response.status_code,
                (perf_counter() - request.tracing_started) * 1000,  # type: ignore[attr-defined]
                extra={"status_code": response.status_code},
            )
        if app_settings.EXPOSE_HEADER:
            expose_header(response, app_settings.HEADER)
        if app_settings.TRACE_ENABLED and (ctx.sampled or response.status_code >= 500):
            http_events.finished(request, response, ctx)
        if otel.edge is not None:
            otel.edge.exit(request)


def expose_header(response: HttpResponseBase, header: str) -> None:
    """Append ``header`` to ``Access-Control-Expose-Headers``, keeping what CORS code put there."""
    existing = response.get("Access-Control-Expose-Headers", "")
    names = [name.strip() for name in existing.split(",") if name.strip()]
    if "*" in names or header.lower() in (name.lower() for name in names):
        return
    response["Access-Control-Expose-Headers"] = ", ".join([*names, header])
