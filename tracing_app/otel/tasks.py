"""Celery's side of the linkage: baggage for each task run, one sampling decision for each publish.

Connected by :func:`tracing_app.otel.enable` after OpenTelemetry's own Celery receivers and after
tracing_app's (:mod:`tracing_app.celery`), so the task span, the producer span and the task's
transaction are all current when these run.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace

from tracing_app.celery import ORIGIN_HEADER, SAMPLED_HEADER
from tracing_app.context import _current
from tracing_app.otel import ATTRIBUTE, carried_baggage, sdk_logs

# Where a task run keeps the baggage it attached, on its request, until postrun.
_BAGGAGE_ATTR = "_tracing_otel_baggage"


def on_before_task_publish(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """A task published outside any transaction (beat, a shell) starts one: tracing_app just minted its
    correlation ID (``tracing_origin`` says so) and decided ``tracing_sampled`` from it, while
    OpenTelemetry sampled the producer span on its own. The span's decision is kept, as at the HTTP edge.
    """
    if headers is None or _current.get() is not None or ORIGIN_HEADER not in headers:
        return
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        headers[SAMPLED_HEADER] = "1" if span_context.trace_flags.sampled else "0"


def on_task_prerun(task: Any = None, **kwargs: Any) -> None:
    """Runs after tracing_app's and OpenTelemetry's own prerun receivers (connection order)."""
    ctx = _current.get()
    if task is None or ctx is None:
        return
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute(ATTRIBUTE, ctx.correlation_id)
    sdk_logs.release(ctx)
    current = otel_context.get_current()
    attached = carried_baggage.with_correlation_id(ctx, current)
    if attached is current:
        return
    setattr(task.request, _BAGGAGE_ATTR, (attached, otel_context.attach(attached)))


def on_task_postrun(task: Any = None, **kwargs: Any) -> None:
    if task is None:
        return
    saved = vars(task.request).pop(_BAGGAGE_ATTR, None)
    if saved is None:
        return
    attached, token = saved
    # OpenTelemetry's postrun receiver may already have restored the context from before the task;
    # resetting our token after it would bring the task's context back.
    if otel_context.get_current() is attached:
        otel_context.detach(token)
