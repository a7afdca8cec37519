"""The relay: publishes outbox rows that the committing process did not (broker down, process gone).

Each pass takes up to ``OUTBOX_RELAY_BATCH_SIZE`` rows whose ``available_at`` has come, with
``SELECT ... FOR UPDATE SKIP LOCKED`` in one transaction, publishes them and deletes them before it
commits. Several relays (one per worker, or dedicated ``manage.py relay_outbox`` processes) therefore never
publish the same row at once; a relay that dies mid-pass rolls back and its rows are taken again.

While the broker is unreachable a pass stops at the first connection error and the relay waits, doubling
up to ``OUTBOX_RELAY_MAX_BACKOFF``; a row that fails for another reason (say a task the broker refuses)
waits on its own, with its error kept in ``last_error``. A database outage is waited out the same way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import timedelta
from typing import Any

from celery import current_app
from celery.canvas import Signature
from django.db import close_old_connections, connections, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from tracing_app import otel
from tracing_app.celery.headers import CORRELATION_HEADER
from tracing_app.celery.publish import deferred_publishing
from tracing_app.conf import app_settings
from tracing_app.context import activate, deactivate, from_carrier
from tracing_app.outbox.models import OutboxMessage

logger = logging.getLogger("tracing_app.outbox")

_MAX_ROW_BACKOFF = 300.0


class BrokerUnavailable(Exception):
    """The broker could not be reached; the pass stopped and its rows wait for the next one."""


def publish_row(row: OutboxMessage, *, retry: bool = True) -> None:
    """Publish one outbox row's signature inside the transaction that queued it (does not delete it).

    A failure is reported as deferred, not lost: the row stays until a publish succeeds.
    """
    signature = Signature.from_dict(row.signature)
    with _publisher_context(row.context), deferred_publishing():
        signature.apply_async(retry=retry)


@contextmanager
def _publisher_context(captured: dict[str, Any]) -> Iterator[None]:
    if not captured:
        yield
        return
    ctx = from_carrier(
        captured[CORRELATION_HEADER],
        hop_id=captured["hop_id"],
        causation_id=captured["causation_id"],
        sampled=captured["sampled"],
        origin=captured["origin"],
        # Publishing ticks the clock once more: the message carries the value taken when it was queued.
        sequence=captured["sequence"] - 1,
    )
    token = activate(ctx)
    try:
        traceparent = captured.get("traceparent")
        with otel.continue_trace(traceparent, "outbox publish") if traceparent else nullcontext():
            yield
    finally:
        deactivate(token)


def relay_batch() -> int:
    """Publish and delete the rows that are due; returns how many were sent.

    Raises :class:`BrokerUnavailable` (after committing what was sent) when the broker cannot be reached.
    """
    using = app_settings.OUTBOX_DATABASE
    due = OutboxMessage.objects.using(using).filter(available_at__lte=timezone.now())
    # Most passes find nothing: one indexed read, no transaction (on SQLite a transaction takes the write
    # lock that the web server and the worker need).
    if not due.exists():
        return 0
    connection_errors = _connection_errors()
    sent: list[int] = []
    unavailable: BaseException | None = None
    with transaction.atomic(using=using):
        rows = list(
            due.select_for_update(skip_locked=True).order_by("available_at", "id")[
                : app_settings.OUTBOX_RELAY_BATCH_SIZE
            ]
        )
        for row in rows:
            try:
                publish_row(row, retry=False)
            except connection_errors as exc:
                unavailable = exc
                break
            except Exception as exc:
                _postpone(row, exc, using)
            else:
                sent.append(row.pk)
        if sent:
            OutboxMessage.objects.using(using).filter(pk__in=sent).delete()
    if sent:
        logger.info("Relayed %s outbox message(s)", len(sent))
    if unavailable is not None:
        raise BrokerUnavailable(str(unavailable)) from unavailable
    return len(sent)


def _connection_errors() -> tuple[type[BaseException], ...]:
    # kombu raises its OperationalError once it gave up connecting.
    with current_app.connection_for_write() as connection:
        return (*connection.connection_errors, OSError, KombuOperationalError)


def _postpone(row: OutboxMessage, exc: Exception, using: str) -> None:
    attempts = row.attempts + 1
    delay = min(app_settings.OUTBOX_RELAY_INTERVAL * 2**attempts, _MAX_ROW_BACKOFF)
    logger.error("Outbox message %s (%s) could not be published: %r", row.pk, row.task_name, exc)
    OutboxMessage.objects.using(using).filter(pk=row.pk).update(
        attempts=attempts,
        last_error=repr(exc)[:2000],
        available_at=timezone.now() + timedelta(seconds=delay),
    )


class Relay(threading.Thread):
    """A daemon thread running relay passes until :meth:`stop`."""

    def __init__(self) -> None:
        super().__init__(name="tracing-outbox-relay", daemon=True)
        self._stopping = threading.Event()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        try:
            run_relay(self._stopping)
        finally:
            connections.close_all()


def run_relay(stopping: threading.Event) -> None:
    """Run relay passes until ``stopping`` is set: back to back while rows wait, else every interval."""
    backoff = 0.0
    while not stopping.is_set():
        try:
            sent = relay_batch()
        except Exception as exc:
            backoff = min(
                max(backoff * 2, app_settings.OUTBOX_RELAY_INTERVAL), app_settings.OUTBOX_RELAY_MAX_BACKOFF
            )
            # One line per outage, not one per pass.
            log = logger.warning if backoff <= app_settings.OUTBOX_RELAY_INTERVAL else logger.debug
            log("Outbox relay pass failed (%r); retrying in %.1fs", exc, backoff)
            connections[app_settings.OUTBOX_DATABASE].close()
            stopping.wait(backoff)
            continue
        backoff = 0.0
        if sent < app_settings.OUTBOX_RELAY_BATCH_SIZE:
            # Between passes the connection follows CONN_MAX_AGE, as between two requests.
            close_old_connections()
            stopping.wait(app_settings.OUTBOX_RELAY_INTERVAL)
