"""Celery's side of the linkage: what the Celery edge's pipeline asks of OpenTelemetry for each task.

The pipeline (:mod:`tracing_app.celery.pipeline`) makes the task's transaction current before
OpenTelemetry's own Celery receivers start the task span, and resets it after they ended it. So:

- the task span gets the correlation ID from :class:`~tracing_app.otel.linkage.CorrelationSpanProcessor`
  as it starts (an SDK provider), and from :meth:`TaskHooks.task_ending` otherwise;
- the task runs with the correlation ID in its baggage: the propagator extracting the message's trace
  context adds it (:mod:`tracing_app.otel.propagation`), so the context OpenTelemetry attaches for the
  task, and detaches after it, already carries it;
- a task published outside any transaction is sent inside the transaction it starts, so the producer
  span follows that transaction's sampling decision.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry import trace

from tracing_app.context import TraceContext
from tracing_app.otel import sdk_logs
from tracing_app.otel.names import ATTRIBUTE


class TaskHooks:
    """Called by the Celery edge's pipeline while OpenTelemetry is enabled; see the module docstring."""

    __slots__ = ("_flush", "_pipeline")

    def __init__(self, pipeline: Any, flush: Callable[[], None]) -> None:
        self._pipeline = pipeline
        self._flush = flush

    def task_started(self, ctx: TraceContext) -> None:
        sdk_logs.release(ctx)

    def task_ending(self, ctx: TraceContext) -> None:
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attribute(ATTRIBUTE, ctx.correlation_id)

    def process_started(self) -> None:
        # Each pool child exports through exporters of its own, never the parent's.
        if self._pipeline is not None:
            self._pipeline.start()

    def process_ending(self) -> None:
        # Pool children leave through os._exit (no atexit): a recycled child (max-tasks-per-child)
        # would otherwise drop its last spans.
        self._flush()
