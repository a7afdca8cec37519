"""Queueing a task in the outbox: a row in the caller's transaction, published once it commits."""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from datetime import timedelta
from queue import SimpleQueue
from typing import Any

from celery import current_app
from celery.canvas import Signature
from celery.result import AsyncResult
from django.db import close_old_connections, connections, transaction
from django.utils import timezone

from tracing_app import otel
from tracing_app.celery.headers import CORRELATION_HEADER
from tracing_app.conf import app_settings
from tracing_app.context import current
from tracing_app.outbox.models import OutboxMessage
from tracing_app.outbox.relay import publish_row
from tracing_app.traces.recorder import emit

logger = logging.getLogger("tracing_app.outbox")

# Most published rows one DELETE removes.
_DELETE_BATCH = 100


def send_on_commit(signature: Signature) -> AsyncResult:
    """Publish ``signature`` (a task, chain, group or chord) if, and once, the current transaction commits.

    The message is a row of the outbox table, written in the caller's transaction on
    ``TRACING_APP["OUTBOX_DATABASE"]``: a rollback discards it, a commit keeps it even when the broker is
    down then. Right after the commit this process publishes it; when that fails (or the process dies
    first) a relay sends it later (see :mod:`tracing_app.outbox.relay`). Delivery is at least once: a
    row may be published twice (a crash between publish and delete), always with the same task IDs, so
    the tasks must be idempotent, as ``acks_late`` tasks must be anyway.

    The published task runs in the caller's transaction (correlation ID, causation, clock, sampling and
    OpenTelemetry trace), whenever the message is sent. Outside ``transaction.atomic()`` the row commits
    at once and is published straight away. Returns the result of the signature's last task.
    """
    result = signature.freeze()
    name = _describe(signature)
    using = app_settings.OUTBOX_DATABASE
    now = timezone.now()
    context = _capture_context(name, result.id)
    row = OutboxMessage.objects.using(using).create(
        task_id=result.id,
        task_name=name,
        signature=dict(signature),
        context=context,
        correlation_id=context.get(CORRELATION_HEADER, ""),
        created_at=now,
        available_at=now + timedelta(seconds=app_settings.OUTBOX_RELAY_DELAY),
    )
    transaction.on_commit(lambda: _publish_after_commit(row), using=using)
    return result


def _capture_context(name: str, task_id: str) -> dict[str, Any]:
    ctx = current()
    if ctx is None:
        return {}
    emit(ctx, "task.queued", name=name, attributes={"task_id": task_id, "outbox": True})
    captured: dict[str, Any] = {
        CORRELATION_HEADER: ctx.correlation_id,
        "hop_id": ctx.hop_id,
        "causation_id": ctx.causation_id,
        "sampled": ctx.sampled,
        "origin": ctx.origin,
        # The clock value the message will carry, taken now: the publish may come much later.
        "sequence": ctx.tick(),
    }
    traceparent = otel.current_traceparent()
    if traceparent is not None:
        captured["traceparent"] = traceparent
    return captured


def _describe(signature: Signature) -> str:
    tasks = signature.get("kwargs", {}).get("tasks") if signature.get("subtask_type") else None
    if not tasks:
        return str(signature.get("task") or signature.get("subtask_type") or "")
    if len(tasks) == 1:
        return _describe(tasks[0])
    names = ", ".join(str(task.get("task", "")) for task in tasks)
    return f"{signature['subtask_type']}({names})"[:255]


class _Sender:
    """One thread per process publishing committed rows, so a slow or absent broker never holds a request.

    Started on first use in each process (a forked pool child starts its own). Rows it has not sent when
    the process ends are the relay's.
    """

    def __init__(self) -> None:
        self._rows: SimpleQueue[OutboxMessage | None] = SimpleQueue()
        self._pid = 0
        self._pending = 0
        self._changed = threading.Condition()

    def submit(self, row: OutboxMessage) -> None:
        with self._changed:
            if self._pid != os.getpid():
                self._rows = SimpleQueue()
                threading.Thread(
                    target=self._run, args=(self._rows,), name="tracing-outbox-sender", daemon=True
                ).start()
                self._pid = os.getpid()
            self._pending += 1
        self._rows.put(row)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every submitted row was handled (tests, and processes about to exit)."""
        with self._changed:
            return self._changed.wait_for(lambda: self._pending == 0, timeout)

    def restart(self) -> None:
        """Let the current thread end; the next row starts a new one."""
        with self._changed:
            if self._pid == os.getpid():
                self._rows.put(None)
            self._pid = 0

    def _run(self, rows: SimpleQueue[OutboxMessage | None]) -> None:
        failed_at = -math.inf
        sent: list[int] = []
        handled = 0
        while (row := rows.get()) is not None:
            # After a failure the broker is left alone for a while: the relay takes these rows, and a row
            # is not sent by both (the relay locks what it sends; this thread does not).
            if time.monotonic() - failed_at >= app_settings.OUTBOX_RELAY_DELAY / 2:
                if _publish(row):
                    sent.append(row.pk)
                else:
                    failed_at = time.monotonic()
            handled += 1
            if rows.empty() or len(sent) >= _DELETE_BATCH:
                # One DELETE for the rows sent since the last: under load, far fewer round trips.
                _delete(sent)
                sent = []
                if rows.empty():
                    # Idle: the connection follows CONN_MAX_AGE, as after a request.
                    close_old_connections()
                with self._changed:
                    self._pending -= handled
                    self._changed.notify_all()
                handled = 0
        connections.close_all()


_sender = _Sender()


def _publish_after_commit(row: OutboxMessage) -> None:
    if current_app.conf.task_always_eager:
        publish_committed(row)
    else:
        _sender.submit(row)


def wait_for_sender(timeout: float = 10.0) -> bool:
    """Block until this process has handed every committed row to the broker (or given it to the relay)."""
    return _sender.wait_idle(timeout)


def restart_sender() -> None:
    """Publish the next committed rows from a new thread.

    For a process whose Celery app changed broker or result backend after it first published: the
    sending thread keeps Celery's per-thread result backend (used to set up chords), as any thread does.
    """
    _sender.restart()


def publish_committed(row: OutboxMessage) -> bool:
    """Publish a committed row and delete it; on failure leave it to the relay (and return False)."""
    if not _publish(row):
        return False
    _delete([row.pk])
    return True


def _publish(row: OutboxMessage) -> bool:
    try:
        publish_row(row, retry=False)
    except Exception:
        logger.warning(
            "Outbox message %s (%s) not published after commit; the relay will send it",
            row.pk,
            row.task_name,
            exc_info=logger.isEnabledFor(logging.DEBUG),
        )
        return False
    return True


def _delete(pks: list[int]) -> None:
    if not pks:
        return
    using = app_settings.OUTBOX_DATABASE
    try:
        OutboxMessage.objects.using(using).filter(pk__in=pks).delete()
    except Exception:
        logger.warning(
            "%s outbox message(s) published but not deleted; the relay may send them again",
            len(pks),
            exc_info=True,
        )
        # This thread's connection may be broken (a database restart): the next rows get a new one.
        connections[using].close()
