"""Ties spans to the transaction: span attribute, W3C baggage, sampling flag and log record IDs.

- :class:`Edge`: called by the correlation middleware, which runs inside OpenTelemetry's server span.
  It makes the span's sampled flag the transaction's decision, stamps the correlation ID on the span,
  logs what OpenTelemetry held back while extracting the request's headers, and attaches the ID as
  baggage (incoming members give way if they leave it no room) until the response leaves, so outgoing
  calls and published tasks carry it.
- :class:`CorrelationSpanProcessor`: stamps the correlation ID on every span started inside a
  transaction (task spans, producer spans, database and HTTP client spans).
- :func:`span_ids`: the log filter's source of ``trace_id`` / ``span_id``.

Celery's side is :mod:`tracing_app.otel.tasks`.
"""

from __future__ import annotations

from contextvars import Token
from typing import Any

from django.http import HttpRequest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import Span, SpanProcessor

from tracing_app.context import TraceContext, current
from tracing_app.otel import carried_baggage, sdk_logs
from tracing_app.otel.names import ATTRIBUTE

# Where a request keeps the baggage it attached until its response leaves.
_BAGGAGE_ATTR = "_tracing_otel_baggage"


class Edge:
    """The correlation middleware's half of the linkage; see the module docstring."""

    __slots__ = ()

    def enter(self, request: HttpRequest, ctx: TraceContext) -> None:
        span = trace.get_current_span()
        span_context = span.get_span_context()
        if span_context.is_valid:
            # One decision per transaction: the server span was sampled before the correlation ID
            # existed (parent-based on an incoming traceparent, else by trace ID); adopt it.
            ctx.sampled = span_context.trace_flags.sampled
            if span.is_recording():
                span.set_attribute(ATTRIBUTE, ctx.correlation_id)
        sdk_logs.release(ctx)
        request.__dict__[_BAGGAGE_ATTR] = otel_context.attach(carried_baggage.with_correlation_id(ctx))

    def exit(self, request: HttpRequest) -> None:
        token: Token[Any] | None = request.__dict__.pop(_BAGGAGE_ATTR, None)
        if token is not None:
            otel_context.detach(token)


class CorrelationSpanProcessor(SpanProcessor):
    """Adds the current correlation ID to each span as it starts; spans outside a transaction get none."""

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        ctx = current()
        if ctx is not None:
            span.set_attribute(ATTRIBUTE, ctx.correlation_id)


def span_ids() -> tuple[str, str] | None:
    """The current span's (trace_id, span_id) in hex, or None outside a span (never all zeros)."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return f"{span_context.trace_id:032x}", f"{span_context.span_id:016x}"
