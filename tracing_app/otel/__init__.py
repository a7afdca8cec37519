"""OpenTelemetry: one trace from the HTTP edge through every task, tied to the correlation ID.

Turn it on with one setting, ``TRACING_APP = {"OTEL_ENABLED": True}`` (``AppConfig.ready()`` then calls
:func:`enable`), or call :func:`enable` yourself before the WSGI/ASGI handler is built. It instruments
Django (server spans, WSGI and ASGI), Celery (producer and worker spans, so ``apply_async`` from a view
carries ``traceparent``) and, with ``OTEL_INSTRUMENT_HTTP``, outgoing ``requests`` and ``httpx`` calls.

The TracerProvider is the one passed to :func:`enable`, else the one the application already registered
with ``opentelemetry.trace.set_tracer_provider()``, else one built from the standard environment variables
(``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_EXPORTER``,
``OTEL_EXPORTER_OTLP_ENDPOINT``...; see :mod:`tracing_app.otel.export`).

Linkage: every server and task span carries the correlation ID as the attribute :data:`ATTRIBUTE`; it
travels in W3C ``baggage`` under :data:`BAGGAGE_KEY` for the length of each hop, so outgoing calls and
task messages carry it; log records get ``trace_id``/``span_id``; :func:`current_traceparent` gives the
raw message body its ``trace_parent``.

This module imports without the ``otel`` extra: :func:`enable` then logs a warning and returns False,
and everything else in tracing_app works as before.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any

from tracing_app.otel.names import ATTRIBUTE, BAGGAGE_KEY

_trace: ModuleType | None
try:
    from opentelemetry import trace as _trace
except ImportError:  # the "otel" extra is not installed
    _trace = None

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider

    from tracing_app.otel.linkage import Edge
    from tracing_app.otel.tasks import TaskHooks
    from tracing_app.otel.wiring import Wiring

__all__ = [
    "ATTRIBUTE",
    "BAGGAGE_KEY",
    "available",
    "continue_trace",
    "current_traceparent",
    "disable",
    "enable",
    "is_enabled",
    "tracer",
]

logger = logging.getLogger("tracing_app.otel")

#: Set while OpenTelemetry is enabled; the middleware calls it around each request. None when off, so the
#: HTTP edge pays one attribute check and nothing else.
edge: Edge | None = None
#: Set while OpenTelemetry is enabled with Celery instrumented; the Celery edge's pipeline calls it for
#: each task. None otherwise.
task_hooks: TaskHooks | None = None
_wiring: Wiring | None = None


def available() -> bool:
    """Whether the OpenTelemetry API and SDK are importable (the ``otel`` extra is installed)."""
    if _trace is None:
        return False
    try:
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        return False
    return True


def is_enabled() -> bool:
    """Whether :func:`enable` has wired OpenTelemetry into this process."""
    return _wiring is not None


def enable(tracer_provider: TracerProvider | None = None) -> bool:
    """Instrument Django, Celery and outgoing HTTP, and link spans to the correlation ID.

    Idempotent. Returns False, changing nothing, when the ``otel`` extra is missing or
    ``OTEL_SDK_DISABLED=true``. Call it before the WSGI/ASGI handler loads its middleware (the setting
    ``OTEL_ENABLED`` does, from ``AppConfig.ready()``): Django instrumentation adds its middleware to
    ``settings.MIDDLEWARE``. An unknown ``OTEL_TRACES_EXPORTER`` raises ``ImproperlyConfigured``.
    """
    global _wiring, edge, task_hooks
    if _wiring is not None:
        return True
    if not available():
        logger.warning(
            "OpenTelemetry is not installed: spans are off, correlation IDs work as before "
            "(install the extra: pip install 'tracing-app[otel]')."
        )
        return False
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        logger.info("OTEL_SDK_DISABLED=true: OpenTelemetry stays off.")
        return False
    from tracing_app.otel.linkage import Edge
    from tracing_app.otel.wiring import Wiring

    _wiring = Wiring.start(tracer_provider)
    edge = Edge()
    task_hooks = _wiring.task_hooks
    return True


def disable() -> None:
    """Undo :func:`enable`: uninstrument, disconnect receivers, stop stamping logs. Spans already
    recorded are flushed; the global TracerProvider, which OpenTelemetry lets a process set only once,
    stays registered.
    """
    global _wiring, edge, task_hooks
    if _wiring is None:
        return
    edge = None
    task_hooks = None
    _wiring.stop()
    _wiring = None


def tracer(name: str = "tracing_app") -> Tracer | None:
    """A tracer from the provider in use (the one :func:`enable` chose), or None without OpenTelemetry."""
    if _trace is None:
        return None
    if _wiring is not None:
        return _wiring.provider.get_tracer(name)
    return _trace.get_tracer(name)


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, or None outside any trace (or without OpenTelemetry).

    For raw message bodies and other carriers that are not HTTP headers or Celery messages.
    """
    if _trace is None:
        return None
    span_context = _trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{span_context.trace_flags:02x}"


@contextmanager
def continue_trace(trace_parent: str | None, name: str, **attributes: Any) -> Iterator[Span | None]:
    """Run a block as a CONSUMER span continuing ``trace_parent`` (e.g. a consumed message body's).

    A missing or malformed ``trace_parent`` starts a new trace, as for HTTP headers. Inside a transaction
    its correlation ID is attached as baggage for the block, as for a request or a task. Yields the span,
    or None (and runs the block as is) when OpenTelemetry is not enabled.
    """
    if _wiring is None:
        yield None
        return
    from opentelemetry import context as otel_context
    from opentelemetry.trace import SpanKind

    from tracing_app.context import current
    from tracing_app.otel.carried_baggage import with_correlation_id
    from tracing_app.otel.tracecontext import W3CTraceContextPropagator

    # Only what the carrier says: the consumer's own surroundings (a polling loop's span) are no parent.
    parent = W3CTraceContextPropagator().extract({"traceparent": trace_parent} if trace_parent else {})
    ctx = current()
    if ctx is not None:
        parent = with_correlation_id(ctx, parent)
    token = otel_context.attach(parent)
    try:
        with _wiring.provider.get_tracer("tracing_app").start_as_current_span(
            name, kind=SpanKind.CONSUMER, attributes=attributes or None
        ) as span:
            yield span
    finally:
        otel_context.detach(token)
