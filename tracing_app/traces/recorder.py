"""Trace event recording: sampled, buffered in memory, written in batches off the request path.

:func:`record` appends one event for the current transaction to an in-process buffer and returns; it
never touches the database and never raises. A daemon thread per process writes the buffer every
``TRACE_FLUSH_INTERVAL`` seconds (sooner once ``TRACE_BATCH_SIZE`` events wait), one ``COPY`` per batch
on PostgreSQL, on its own database connection, so the writes never join a request's or a task's transaction: a
rolled-back request still leaves its error events.

Sampling: the decision is the transaction's (``TraceContext.sampled``, made once at the edge and carried
to every hop). An unsampled transaction records only its errors: events recorded with ``error=True``,
which the integrations use for failed tasks, 5xx responses, uncaught exceptions and log records at ERROR
or above.

Failures never reach the caller: a bad attribute, a full buffer or a database error is logged on the
``tracing_app.recorder`` logger (whose records are never recorded themselves) and the events concerned
are dropped, except while the database is unreachable: then they wait in the buffer and are written
once it is back, so an outage's own story survives it. The buffer is bounded (``TRACE_BUFFER_SIZE``),
so a long outage costs no more memory; what it could not hold is counted in a warning.

Events still buffered when a process ends are written at interpreter exit and, through :func:`flush`, on
Celery's ``worker_process_shutdown`` (prefork children leave through ``os._exit``, skipping ``atexit``).
Tests call :func:`flush` to see their events at once.

The buffer and its thread are :mod:`tracing_app.traces.buffer`, the cleaning of attributes
:mod:`tracing_app.traces.attributes`, the batch insert :mod:`tracing_app.traces.writer`.
"""

from __future__ import annotations

import contextlib
import logging
import time
import traceback
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from tracing_app.conf import app_settings
from tracing_app.context import TraceContext, current
from tracing_app.ids import safe_repr
from tracing_app.logs import current_span_ids
from tracing_app.traces.attributes import MAX_STRING, clean_attributes, cut
from tracing_app.traces.buffer import new_pending_event, pending_events

logger = logging.getLogger("tracing_app.recorder")

# Exceptions already stored as an error event carry this attribute, so the log record Django or Celery
# writes for the same exception is not stored a second time.
RECORDED_MARK = "_tracing_app_recorded"


def record(
    kind: str,
    *,
    name: str = "",
    status: str = "",
    duration_ms: float | None = None,
    attributes: dict | None = None,
    error: bool = False,
) -> None:
    """Record one event of the current transaction; a no-op outside any transaction.

    ``kind`` is one of :class:`tracing_app.traces.models.Kind`'s values ("request.started", "log", ...);
    ``attributes`` is a small dict of JSON-friendly values (bounded, sensitive keys masked). With
    ``error=True`` the event is recorded even when the transaction is not sampled.
    """
    ctx = current()
    if ctx is not None:
        emit(
            ctx,
            kind,
            name=name,
            status=status,
            duration_ms=duration_ms,
            attributes=attributes,
            error=error,
        )


def annotate(**attributes: Any) -> None:
    """Record what the current hop is about (``annotate(order_id=order.pk)``), so the admin's
    ``key=value`` search finds the transaction and ``TRACE_ADMIN_LINKS`` can link the record."""
    record("annotation", attributes=attributes)


def emit(
    ctx: TraceContext,
    kind: str,
    *,
    name: str = "",
    status: str = "",
    duration_ms: float | None = None,
    attributes: Mapping[str, Any] | None = None,
    error: bool = False,
    sequence: int | None = None,
    owned: bool = False,
    at: float | None = None,
) -> None:
    """:func:`record` for an explicit context (the HTTP edge records before its context is current).

    ``sequence`` is for an event whose clock value was already taken (a published task's header);
    otherwise the context's clock is advanced. ``at`` (a ``time.time()`` value) is for an event that
    happened before it is recorded (a publish, recorded once the broker accepted it). ``owned`` says
    ``attributes`` is a new dict whose values nobody changes afterwards (the HTTP edge's strings): it is
    then cleaned in the writer thread instead of being copied on the caller's.
    """
    if not (error or ctx.sampled) or not app_settings.TRACE_ENABLED:
        return
    try:
        span = current_span_ids()
        pending_events.enqueue(
            new_pending_event(
                (
                    ctx.correlation_id,
                    ctx.hop_id,
                    ctx.causation_id or "",
                    ctx.tick() if sequence is None else sequence,
                    kind,
                    name,
                    status,
                    duration_ms,
                    error,
                    time.time() if at is None else at,
                    span[0] if span else "",
                    span[1] if span else "",
                    (attributes if owned else clean_attributes(attributes)) if attributes else {},
                    owned,
                )
            )
        )
    except Exception:
        logger.warning("Could not record a %s trace event", safe_repr(kind, 32), exc_info=True)


def flush(timeout: float = 30.0) -> int:
    """Write every buffered event now, in the calling thread; returns how many were written.

    Inside ``transaction.atomic()`` the events join that transaction (tests rely on it to roll them
    back); call it outside one to have them committed. Waits at most ``timeout`` seconds for a write in
    progress on the background thread.
    """
    return pending_events.flush(timeout)


def describe_exception(exc: BaseException, tb: TracebackType | None = None) -> dict[str, Any]:
    """The attributes of an error event: exception type, message and the end of its traceback."""
    lines = traceback.format_exception(type(exc), exc, tb or exc.__traceback__)
    text = "".join(lines)
    return {
        "exception": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "message": cut(str(exc)),
        "traceback": text if len(text) <= MAX_STRING else "..." + text[-MAX_STRING:],
    }


def mark_recorded(exc: BaseException) -> None:
    """Note that ``exc`` is stored as an error event (see :data:`RECORDED_MARK`)."""
    with contextlib.suppress(AttributeError, TypeError):
        setattr(exc, RECORDED_MARK, True)
