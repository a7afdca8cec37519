"""The Celery edge's receivers: one per signal, calling the consumers in a fixed order.

Like the HTTP middleware, each receiver makes the hop's context current (or reads the current one),
then calls the trace events (:mod:`tracing_app.traces.celery_events`), then OpenTelemetry's task hooks
(:data:`tracing_app.otel.task_hooks`, while enabled); a hop's teardown calls them in reverse and resets
the context last. :func:`connect` connects each receiver once, keyed by its ``dispatch_uid``.
OpenTelemetry's own Celery receivers, which ``otel.enable()`` connects after ``install()``, start the
task span once the task's context is current and end it before the context is reset
(:mod:`tracing_app.otel.tasks`).

``task_prerun`` makes the task's context current (hop ID = ``task_id``) and ``task_postrun`` resets it
with its token, so two tasks on one process never see each other's ID, in every pool. As with a
middleware, the project's own receivers connected after :func:`~tracing_app.celery.install` run inside
the task's context for ``task_prerun``, ``task_retry``, ``task_success`` and ``task_failure``; its
``task_postrun`` receivers run after the reset. Eager tasks
(``task_always_eager``, ``.apply()``) run as a child hop of the caller's transaction and hand the caller
back its own context. ``task_retry``, ``task_success`` and ``task_failure`` fire between the two, inside
the task's context; ``task_revoked`` and :data:`~tracing_app.celery.worker.task_requeued` fire in the
worker's main process inside the context :mod:`tracing_app.celery.worker` made current.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, MutableMapping
from contextvars import Token
from typing import Any

from celery import signals
from django.dispatch import Signal

from tracing_app import otel
from tracing_app.celery import worker_logs
from tracing_app.celery.headers import (
    carried_sequence,
    carries_valid_id,
    read_headers,
    write_headers,
    write_minted_headers,
)
from tracing_app.celery.publish import (
    minted_origin,
    publish_failed,
    publish_from_beat,
    publishing_deferred,
    starts_transaction,
)
from tracing_app.celery.worker import task_requeued
from tracing_app.context import TraceContext, activate, current, deactivate, from_carrier
from tracing_app.traces import celery_events

logger = logging.getLogger("tracing_app.celery")

# Where a task run keeps the token of the context its prerun made current, on its request: eager tasks
# nest and thread pools interleave, and each postrun must reset exactly the binding its own prerun made.
_BINDING_ATTR = "_tracing_binding"

# When this thread's current publish began: "task.published" is recorded once the broker accepted the
# message, which under load can be after the worker has already started the task. The event keeps the
# moment the message left, so the waterfall never draws the task before its cause.
_publishing = threading.local()


# -- publish --------------------------------------------------------------------------------------------


def _before_task_publish(headers: MutableMapping[str, Any] | None = None, **_: Any) -> None:
    if headers is None:
        return
    ctx = current()
    if ctx is None:
        # Sent by a publisher other than TracedAMQP (which makes the new transaction current itself):
        # keep a valid ID the message already carries, otherwise the message starts a transaction.
        if not carries_valid_id(headers):
            write_minted_headers(headers, from_carrier(None, origin=minted_origin()))
    elif not starts_transaction(ctx):
        write_headers(headers, ctx)
        if ctx.sampled:
            _publishing.started = time.time()


def _after_task_publish(
    sender: str | None = None,
    headers: Mapping[str, Any] | None = None,
    routing_key: str | None = None,
    **_: Any,
) -> None:
    ctx = current()
    if ctx is None or headers is None or starts_transaction(ctx):
        return
    celery_events.task_published(
        ctx,
        sender or headers.get("task") or "",
        headers,
        routing_key,
        sequence=carried_sequence(headers),
        from_outbox=publishing_deferred(),
        sent_at=getattr(_publishing, "started", None),
    )


def _publish_failed(
    sender: str | None = None,
    exception: BaseException | None = None,
    headers: Mapping[str, Any] | None = None,
    deferred: bool = False,
    **_: Any,
) -> None:
    ctx = current()
    if ctx is None or exception is None or starts_transaction(ctx):
        return
    celery_events.publish_failed(ctx, sender or "", exception, headers, deferred=deferred)


def _beat_init(**_: Any) -> None:
    publish_from_beat()


# -- the task body --------------------------------------------------------------------------------------


def _task_context(task: Any, task_id: str) -> TraceContext:
    request = task.request
    caller = current()
    if request.is_eager:
        if caller is None:
            return from_carrier(None, hop_id=task_id, origin="task")
        return from_carrier(
            caller.correlation_id,
            hop_id=task_id,
            causation_id=caller.hop_id,
            sampled=caller.sampled,
            origin=caller.origin,
            sequence=caller.tick(),
        )
    if caller is not None and caller.hop_id != task_id:
        # Only the solo pool runs a task inside a context: its own message's. Anything else was left
        # behind by code outside a task (a thread, a receiver): say so instead of hiding it.
        logger.warning(
            "Task %s started while transaction %s was current; it runs in its own",
            task_id,
            caller.correlation_id,
        )
    return read_headers(vars(request), hop_id=task_id, parent_id=request.parent_id, report=True)


def _task_prerun(
    task_id: str | None = None, task: Any = None, args: Any = None, kwargs: Any = None, **_: Any
) -> None:
    if task is None or task_id is None:
        return
    ctx = _task_context(task, task_id)
    setattr(task.request, _BINDING_ATTR, activate(ctx))
    celery_events.task_started(ctx, task, task_id, args, kwargs)
    hooks = otel.task_hooks
    if hooks is not None:
        hooks.task_started(ctx)


def _task_postrun(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    if task is None:
        return
    request = task.request
    token: Token[TraceContext | None] | None = vars(request).pop(_BINDING_ATTR, None)
    if token is None:
        return
    finished = current()
    if finished is not None:
        hooks = otel.task_hooks
        if hooks is not None:
            hooks.task_ending(finished)
    if task_id is not None:
        celery_events.task_ended(task_id)
    deactivate(token)
    caller = token.old_value
    if request.is_eager and isinstance(caller, TraceContext) and finished is not None:
        # Like a reply: whatever the caller does next happens after everything the eager task did.
        caller.observe(finished.sequence)


def _task_retry(sender: Any = None, request: Any = None, reason: Any = None, **_: Any) -> None:
    ctx = current()
    if ctx is None or request is None:
        return
    celery_events.task_retried(ctx, getattr(sender, "name", ""), request, reason)


def _task_success(sender: Any = None, **_: Any) -> None:
    ctx = current()
    if ctx is None or sender is None:
        return
    celery_events.task_succeeded(ctx, sender.name, sender.request.id)


def _task_failure(
    sender: Any = None,
    task_id: str | None = None,
    exception: BaseException | None = None,
    traceback: Any = None,
    **_: Any,
) -> None:
    ctx = current()
    if ctx is None or exception is None:
        return
    retries = getattr(getattr(sender, "request", None), "retries", None)
    celery_events.task_failed(ctx, getattr(sender, "name", ""), task_id, exception, traceback, retries)


# -- the worker's main process --------------------------------------------------------------------------


def _task_revoked(
    sender: Any = None, request: Any = None, terminated: bool = False, expired: bool = False, **_: Any
) -> None:
    ctx = current()
    if ctx is None:
        return
    celery_events.task_revoked(
        ctx,
        getattr(sender, "name", ""),
        getattr(request, "id", None),
        terminated=bool(terminated),
        expired=bool(expired),
    )


def _task_requeued(
    sender: Any = None, task_id: str | None = None, exception: BaseException | None = None, **_: Any
) -> None:
    ctx = current()
    if ctx is None or exception is None:
        return
    celery_events.task_requeued(ctx, getattr(sender, "name", ""), task_id, exception)


# -- processes and their logs ---------------------------------------------------------------------------


def _after_setup_logger(**kwargs: Any) -> None:
    worker_logs.after_setup_logger(**kwargs)
    celery_events.restore_root_handlers()


def _after_setup_task_logger(**kwargs: Any) -> None:
    worker_logs.after_setup_task_logger(**kwargs)


def _worker_process_init(**_: Any) -> None:
    hooks = otel.task_hooks
    if hooks is not None:
        hooks.process_started()


def _worker_process_shutdown(**_: Any) -> None:
    celery_events.process_ending()
    hooks = otel.task_hooks
    if hooks is not None:
        hooks.process_ending()


def _worker_shutdown(**_: Any) -> None:
    celery_events.process_ending()


RECEIVERS: tuple[tuple[Signal | Any, Callable[..., None]], ...] = (
    (signals.before_task_publish, _before_task_publish),
    (signals.after_task_publish, _after_task_publish),
    (publish_failed, _publish_failed),
    (signals.beat_init, _beat_init),
    (signals.beat_embedded_init, _beat_init),
    (signals.task_prerun, _task_prerun),
    (signals.task_retry, _task_retry),
    (signals.task_success, _task_success),
    (signals.task_failure, _task_failure),
    (signals.task_postrun, _task_postrun),
    (signals.task_revoked, _task_revoked),
    (task_requeued, _task_requeued),
    (signals.after_setup_logger, _after_setup_logger),
    (signals.after_setup_task_logger, _after_setup_task_logger),
    (signals.worker_process_init, _worker_process_init),
    (signals.worker_process_shutdown, _worker_process_shutdown),
    (signals.worker_shutdown, _worker_shutdown),
)


def dispatch_uid(receiver: Callable[..., None]) -> str:
    """The key :func:`connect` connects ``receiver`` under."""
    return f"tracing_app.celery.{receiver.__name__.lstrip('_')}"


def connect() -> None:
    """Connect every receiver once; connecting again changes nothing."""
    for signal, receiver in RECEIVERS:
        signal.connect(receiver, weak=False, dispatch_uid=dispatch_uid(receiver))
