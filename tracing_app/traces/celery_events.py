"""Trace events of Celery tasks: published, publish failed, started, retried, succeeded, failed, requeued
after a lost worker, revoked.

"Published" is recorded once the broker accepted the message (``after_task_publish``); a message it
did not accept is an error event (or, for a publisher that keeps the message to send later, a
``task.publish_deferred`` event), so a transaction never shows a task as sent that no worker can get.

Plain functions, called by the Celery edge's pipeline (:mod:`tracing_app.celery.pipeline`) with the
transaction the event belongs to, after it made the task's context current and before it resets it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from time import perf_counter
from typing import Any

from tracing_app.conf import app_settings
from tracing_app.context import TraceContext
from tracing_app.traces.log_handler import TraceEventHandler
from tracing_app.traces.recorder import describe_exception, emit, flush, mark_recorded

__all__ = [
    "process_ending",
    "publish_failed",
    "remember_root_handlers",
    "restore_root_handlers",
    "task_ended",
    "task_failed",
    "task_published",
    "task_requeued",
    "task_retried",
    "task_revoked",
    "task_started",
    "task_succeeded",
]

# perf_counter() at task start, per task ID, in the process running the task.
_started: dict[str, float] = {}
# TraceEventHandlers that LOGGING put on the root logger (see restore_root_handlers).
_root_trace_handlers: list[logging.Handler] = []


def _elapsed_ms(task_id: str | None) -> float | None:
    began = _started.pop(task_id, None) if task_id is not None else None
    return None if began is None else (perf_counter() - began) * 1000


def _message_attributes(headers: Mapping[str, Any], routing_key: str | None) -> dict[str, Any]:
    attributes: dict[str, Any] = {"task_id": headers.get("id")}
    if routing_key:
        attributes["queue"] = routing_key
    retries = headers.get("retries")
    if retries:
        attributes["retries"] = retries
    if headers.get("eta"):
        attributes["eta"] = headers["eta"]
    return attributes


def task_published(
    ctx: TraceContext,
    name: str,
    headers: Mapping[str, Any],
    routing_key: str | None,
    *,
    sequence: int | None,
    from_outbox: bool,
    sent_at: float | None = None,
) -> None:
    """The broker accepted a task message; ``sequence`` is the clock value the message carries and
    ``sent_at`` (a ``time.time()`` value) when publishing began."""
    if not ctx.sampled:
        return
    attributes = _message_attributes(headers, routing_key)
    if from_outbox:
        # Sent from the outbox: its "task.queued" event already counted the task as waiting.
        attributes["outbox"] = True
    emit(ctx, "task.published", name=name, attributes=attributes, sequence=sequence, at=sent_at)


def publish_failed(
    ctx: TraceContext,
    name: str,
    exception: BaseException,
    headers: Mapping[str, Any] | None,
    *,
    deferred: bool,
) -> None:
    """The broker did not accept a task message; ``deferred`` when it is kept to be sent again."""
    attributes = describe_exception(exception)
    if headers is not None:
        attributes.update(_message_attributes(headers, None))
    emit(
        ctx,
        "task.publish_deferred" if deferred else "task.publish_failed",
        name=name,
        status="DEFERRED" if deferred else "NOT SENT",
        attributes=attributes,
        error=not deferred,
    )
    if not deferred:
        # The caller sees the exception next and may log it: it is stored once.
        mark_recorded(exception)


def _emit_failed(
    ctx: TraceContext, name: str, task_id: str | None, status: str, attributes: dict[str, Any]
) -> None:
    emit(
        ctx,
        "task.failed",
        name=name,
        status=status,
        duration_ms=_elapsed_ms(task_id),
        attributes=attributes,
        error=True,
    )


def task_requeued(ctx: TraceContext, name: str, task_id: str | None, exception: BaseException) -> None:
    """The task's worker process was lost and its message went back to the queue."""
    attributes = describe_exception(exception)
    attributes["requeued"] = True
    _emit_failed(ctx, name, task_id, "WORKER LOST", attributes)
    mark_recorded(exception)


def task_revoked(
    ctx: TraceContext, name: str, task_id: str | None, *, terminated: bool, expired: bool
) -> None:
    emit(
        ctx,
        "task.revoked",
        name=name,
        status="EXPIRED" if expired else "REVOKED",
        duration_ms=_elapsed_ms(task_id),
        attributes={"terminated": terminated, "expired": expired},
        error=True,
    )


def task_started(ctx: TraceContext, task: Any, task_id: str, args: Any, kwargs: Any) -> None:
    """The task's body is about to run, in this process."""
    _started[task_id] = perf_counter()
    if not ctx.sampled:
        return
    request = task.request
    attributes: dict[str, Any] = {"retries": request.retries or 0}
    delivery = request.delivery_info or {}
    if delivery.get("routing_key"):
        attributes["queue"] = delivery["routing_key"]
    if request.hostname:
        attributes["worker"] = request.hostname
    if app_settings.TRACE_TASK_ARGUMENTS:
        attributes["args"] = list(args or ())
        attributes["kwargs"] = dict(kwargs or {})
    emit(ctx, "task.started", name=task.name, attributes=attributes)


def task_retried(ctx: TraceContext, name: str, request: Any, reason: Any) -> None:
    attributes: dict[str, Any] = {"reason": str(reason), "retries": request.retries or 0}
    cause = getattr(reason, "exc", None)
    if cause is not None:
        attributes["exception"] = f"{type(cause).__module__}.{type(cause).__qualname__}"
    emit(
        ctx,
        "task.retried",
        name=name,
        status="RETRY",
        duration_ms=_elapsed_ms(request.id),
        attributes=attributes,
    )


def task_succeeded(ctx: TraceContext, name: str, task_id: str | None) -> None:
    emit(ctx, "task.succeeded", name=name, status="SUCCESS", duration_ms=_elapsed_ms(task_id))


def task_failed(
    ctx: TraceContext,
    name: str,
    task_id: str | None,
    exception: BaseException,
    traceback: Any,
    retries: int | None,
) -> None:
    if not app_settings.TRACE_ENABLED:
        return
    attributes = describe_exception(exception, traceback)
    if retries:
        attributes["retries"] = retries
    _emit_failed(ctx, name, task_id, "FAILURE", attributes)
    # Celery logs the same exception next ("Task ... raised unexpected"); that record is not stored again.
    mark_recorded(exception)


def task_ended(task_id: str) -> None:
    """The task's body returned; ignored and rejected tasks end without success or failure."""
    _started.pop(task_id, None)


def remember_root_handlers() -> None:
    """Note the trace event handlers ``LOGGING`` put on the root logger (Django has applied it by now)."""
    _root_trace_handlers[:] = [h for h in logging.getLogger().handlers if isinstance(h, TraceEventHandler)]


def restore_root_handlers() -> None:
    """Put back the root logger's trace event handlers after ``celery worker`` emptied its handlers
    (``worker_hijack_root_logger``)."""
    root = logging.getLogger()
    for handler in _root_trace_handlers:
        if handler not in root.handlers:
            root.addHandler(handler)


def process_ending() -> None:
    """Prefork children leave through ``os._exit``, skipping atexit: write what is buffered now."""
    flush()
