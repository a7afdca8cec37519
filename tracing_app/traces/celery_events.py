"""Trace events of Celery tasks: published, publish failed, started, retried, succeeded, failed, requeued
after a lost worker, revoked.

"Published" is recorded once the broker accepted the message (``after_task_publish``); a message it
did not accept is an error event (or, for a publisher that keeps the message to send later, a
``task.publish_deferred`` event), so a transaction never shows a task as sent that no worker can get.

The receivers run inside the task's transaction, which :mod:`tracing_app.celery` makes current in its
``task_prerun`` receiver and resets in ``task_postrun``. Celery calls receivers in connection order, so
:func:`connect` appends ours after whatever is connected, and connects again when a worker starts (by
then ``install(app)`` has run, whatever the import order). ``task_retry``, ``task_success`` and
``task_failure`` fire between the two, so only ``task.started`` depends on that order; it is skipped,
never recorded against the wrong transaction, when the current context is not the task's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from time import perf_counter
from typing import Any

from celery import signals

from tracing_app.celery import SEQUENCE_HEADER, publish_failed, publishing_deferred, task_requeued
from tracing_app.conf import app_settings
from tracing_app.context import _current
from tracing_app.traces.log_handler import TraceEventHandler
from tracing_app.traces.recorder import describe_exception, emit, flush, mark_recorded

# perf_counter() at task_prerun, per task ID, in the process running the task.
_started: dict[str, float] = {}
# TraceEventHandlers that LOGGING put on the root logger (see on_after_setup_logger).
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


def _message_sequence(headers: Mapping[str, Any]) -> int | None:
    # The clock value the message carries, so the child's events follow this one.
    sequence = headers.get(SEQUENCE_HEADER)
    return int(sequence) if isinstance(sequence, str) and sequence.isdigit() else None


def on_after_task_publish(
    sender: str | None = None,
    headers: Mapping[str, Any] | None = None,
    routing_key: str | None = None,
    **kwargs: Any,
) -> None:
    ctx = _current.get()
    if ctx is None or headers is None or not ctx.sampled:
        return
    attributes = _message_attributes(headers, routing_key)
    if publishing_deferred():
        # Sent from the outbox: its "task.queued" event already counted the task as waiting.
        attributes["outbox"] = True
    emit(
        ctx,
        "task.published",
        name=sender or headers.get("task") or "",
        attributes=attributes,
        sequence=_message_sequence(headers),
    )


def on_publish_failed(
    sender: str | None = None,
    exception: BaseException | None = None,
    headers: Mapping[str, Any] | None = None,
    deferred: bool = False,
    **_: Any,
) -> None:
    ctx = _current.get()
    if ctx is None or exception is None:
        return
    attributes = describe_exception(exception)
    if headers is not None:
        attributes.update(_message_attributes(headers, None))
    emit(
        ctx,
        "task.publish_deferred" if deferred else "task.publish_failed",
        name=sender or "",
        status="DEFERRED" if deferred else "NOT SENT",
        attributes=attributes,
        error=not deferred,
    )
    if not deferred:
        # The caller sees the exception next and may log it: it is stored once.
        mark_recorded(exception)


def _emit_failed(ctx: Any, sender: Any, task_id: str | None, status: str, attributes: dict[str, Any]) -> None:
    emit(
        ctx,
        "task.failed",
        name=getattr(sender, "name", ""),
        status=status,
        duration_ms=_elapsed_ms(task_id),
        attributes=attributes,
        error=True,
    )


def on_task_requeued(
    sender: Any = None, task_id: str | None = None, exception: BaseException | None = None, **_: Any
) -> None:
    ctx = _current.get()
    if ctx is None or exception is None:
        return
    attributes = describe_exception(exception)
    attributes["requeued"] = True
    _emit_failed(ctx, sender, task_id, "WORKER LOST", attributes)
    mark_recorded(exception)


def on_task_revoked(
    sender: Any = None, request: Any = None, terminated: bool = False, expired: bool = False, **_: Any
) -> None:
    ctx = _current.get()
    if ctx is None:
        return
    emit(
        ctx,
        "task.revoked",
        name=getattr(sender, "name", ""),
        status="EXPIRED" if expired else "REVOKED",
        duration_ms=_elapsed_ms(getattr(request, "id", None)),
        attributes={"terminated": bool(terminated), "expired": bool(expired)},
        error=True,
    )


def on_task_prerun(
    task_id: str | None = None, task: Any = None, args: Any = None, kwargs: Any = None, **_: Any
) -> None:
    ctx = _current.get()
    if ctx is None or task is None or ctx.hop_id != task_id:
        return
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


def on_task_retry(sender: Any = None, request: Any = None, reason: Any = None, **_: Any) -> None:
    ctx = _current.get()
    if ctx is None or request is None:
        return
    attributes: dict[str, Any] = {"reason": str(reason), "retries": request.retries or 0}
    cause = getattr(reason, "exc", None)
    if cause is not None:
        attributes["exception"] = f"{type(cause).__module__}.{type(cause).__qualname__}"
    emit(
        ctx,
        "task.retried",
        name=getattr(sender, "name", ""),
        status="RETRY",
        duration_ms=_elapsed_ms(request.id),
        attributes=attributes,
    )


def on_task_success(sender: Any = None, **_: Any) -> None:
    ctx = _current.get()
    if ctx is None or sender is None:
        return
    duration = _elapsed_ms(sender.request.id)
    emit(ctx, "task.succeeded", name=sender.name, status="SUCCESS", duration_ms=duration)


def on_task_failure(
    sender: Any = None,
    task_id: str | None = None,
    exception: BaseException | None = None,
    traceback: Any = None,
    **_: Any,
) -> None:
    ctx = _current.get()
    if ctx is None or exception is None or not app_settings.TRACE_ENABLED:
        return
    attributes = describe_exception(exception, traceback)
    request = getattr(sender, "request", None)
    retries = getattr(request, "retries", None)
    if retries:
        attributes["retries"] = retries
    _emit_failed(ctx, sender, task_id, "FAILURE", attributes)
    # Celery logs the same exception next ("Task ... raised unexpected"); that record is not stored again.
    mark_recorded(exception)


def on_task_postrun(task_id: str | None = None, **_: Any) -> None:
    # Ignored and rejected tasks end without success or failure: forget their start time.
    if task_id is not None:
        _started.pop(task_id, None)


def on_after_setup_logger(**_: Any) -> None:
    # `celery worker` empties the root logger's handlers (worker_hijack_root_logger) after Django has
    # applied LOGGING: put back the trace event handlers LOGGING had configured there.
    root = logging.getLogger()
    for handler in _root_trace_handlers:
        if handler not in root.handlers:
            root.addHandler(handler)


def on_process_end(**_: Any) -> None:
    # Prefork children leave through os._exit, skipping atexit: write what is buffered now.
    flush()


_RECEIVERS: tuple[tuple[Any, Callable[..., None]], ...] = (
    (signals.after_task_publish, on_after_task_publish),
    (publish_failed, on_publish_failed),
    (task_requeued, on_task_requeued),
    (signals.task_revoked, on_task_revoked),
    (signals.task_prerun, on_task_prerun),
    (signals.task_retry, on_task_retry),
    (signals.task_success, on_task_success),
    (signals.task_failure, on_task_failure),
    (signals.task_postrun, on_task_postrun),
    (signals.after_setup_logger, on_after_setup_logger),
    (signals.worker_process_shutdown, on_process_end),
    (signals.worker_shutdown, on_process_end),
)


def connect(**_: Any) -> None:
    """Connect (or move to the end) every receiver; idempotent, keyed by ``dispatch_uid``."""
    for signal, receiver in _RECEIVERS:
        uid = f"tracing_app.traces.{receiver.__name__}"
        signal.disconnect(receiver, dispatch_uid=uid)
        signal.connect(receiver, weak=False, dispatch_uid=uid)


def wire() -> None:
    """Connect the receivers now and again at worker start, after the app's ``install()``."""
    _root_trace_handlers[:] = [h for h in logging.getLogger().handlers if isinstance(h, TraceEventHandler)]
    connect()
    signals.worker_init.connect(connect, weak=False, dispatch_uid="tracing_app.traces.connect")
