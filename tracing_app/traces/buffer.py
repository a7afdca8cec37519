"""The per-process buffer of trace events and the daemon thread that writes it in batches.

:class:`EventBuffer` holds what :mod:`tracing_app.traces.recorder` hands it, within ``TRACE_BUFFER_SIZE``,
and its thread passes a batch to :mod:`tracing_app.traces.writer` every ``TRACE_FLUSH_INTERVAL`` seconds
(sooner once ``TRACE_BATCH_SIZE`` events wait), on its own database connection. While the database is
unreachable the batches wait in the buffer; a batch with one bad row is written row by row; anything
else is logged on ``tracing_app.recorder`` and dropped, and the drops are counted
(:mod:`tracing_app.traces.drops`).
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from django.conf import settings
from django.core.signals import setting_changed
from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connections,
)
from django.dispatch import receiver
from django.utils import timezone

from tracing_app.conf import app_settings
from tracing_app.ids import safe_repr
from tracing_app.traces.attributes import clean_attributes, cut

logger = logging.getLogger("tracing_app.recorder")


class PendingEvent(NamedTuple):
    """An event waiting in the buffer: plain values only, turned into a row when written."""

    correlation_id: str
    hop_id: str
    causation_id: str
    sequence: int
    kind: str
    name: str
    status: str
    duration_ms: float | None
    error: bool
    created: float
    trace_id: str
    span_id: str
    attributes: Mapping[str, Any]
    # Attributes not cleaned yet: the writer thread cleans them (see ``owned`` in the recorder's emit()).
    raw: bool = False


#: A :class:`PendingEvent` from a tuple of all its fields, built in C: a NamedTuple's own constructor is
#: a Python function with keyword handling, which the request thread would pay for every event.
new_pending_event: Callable[[tuple[Any, ...]], PendingEvent] = functools.partial(tuple.__new__, PendingEvent)


def _moment(created: float, aware: bool) -> datetime:
    moment = datetime.fromtimestamp(created, UTC)
    return moment if aware else timezone.make_naive(moment)


def _attributes_of(attributes: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """Attributes the caller left to the writer to clean (see ``owned`` in the recorder's emit())."""
    try:
        return clean_attributes(attributes)
    except Exception:
        logger.warning("Could not record the attributes of a %s trace event", safe_repr(kind, 32))
        return {}


class EventBuffer:
    """The per-process buffer and its writer thread."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._queue: deque[PendingEvent] = deque()
        self._wakeup = threading.Event()
        # Set when the writer is woken only to read a changed interval: it then writes nothing, so a
        # settings change never has it race a flush the changing code makes itself (tests do).
        self._retime = False
        self._write_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._dropped = 0
        # Drops already logged but not yet added to this process's row of the dropped-events metric.
        self._unsaved_drops = 0
        self._process_started = time.time()
        # True from a write that found the database unreachable to the next write that succeeds.
        self._away = False
        self._host = socket.gethostname()[:255]

    def after_fork(self) -> None:
        # The child inherits the parent's buffer (the parent writes those events) but not its thread.
        self._reset()

    def enqueue(self, event: PendingEvent) -> None:
        queue = self._queue
        if len(queue) >= app_settings.TRACE_BUFFER_SIZE:
            self._dropped += 1
            return
        queue.append(event)
        if self._thread is None:
            self._start()
        elif len(queue) == app_settings.TRACE_BATCH_SIZE:
            # Once per batch, not once per event past it: setting the event takes a lock and notifies,
            # and the writer looks at the buffer again after every write anyway (_run).
            self._wakeup.set()

    def retime(self) -> None:
        if self._thread is not None:
            self._retime = True
            self._wakeup.set()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="tracing_app-recorder", daemon=True)
                thread.start()
                self._thread = thread

    def _run(self) -> None:
        written = 0
        while True:
            # A full batch that arrived while the last ones were written goes at once; after a write that
            # failed or found nothing, the writer waits as usual.
            if not (written and len(self._queue) >= app_settings.TRACE_BATCH_SIZE):
                self._wakeup.wait(app_settings.TRACE_FLUSH_INTERVAL)
            self._wakeup.clear()
            written = 0
            if self._retime:
                self._retime = False
                continue
            try:
                written = self.flush(timeout=None)
            except Exception:
                logger.exception("The trace event writer failed; it keeps running")
            finally:
                # Honour CONN_MAX_AGE and drop a broken connection, like Django does between requests.
                connections[app_settings.TRACE_DATABASE].close_if_unusable_or_obsolete()

    def flush(self, timeout: float | None) -> int:
        if not self._write_lock.acquire(timeout=-1 if timeout is None else timeout):
            logger.warning("Trace events not flushed: a write still held the lock after %ss", timeout)
            return 0
        try:
            written = 0
            pending = len(self._queue)
            # Settings are read only when there is something to write: a process that imported the
            # recorder without configuring Django still exits quietly.
            batch_size = app_settings.TRACE_BATCH_SIZE if pending else 0
            while pending > 0:
                batch = [self._queue.popleft() for _ in range(min(batch_size, pending))]
                pending -= len(batch)
                try:
                    written += self._write(batch)
                except (OperationalError, InterfaceError) as exc:
                    self._keep(batch, exc)
                    break
            if self._dropped:
                dropped, self._dropped = self._dropped, 0
                logger.warning(
                    "Dropped %d trace events: the buffer of %d was full (is the database reachable?)",
                    dropped,
                    app_settings.TRACE_BUFFER_SIZE,
                )
                self._unsaved_drops += dropped
            if self._unsaved_drops and not self._away:
                self._save_drops()
            return written
        finally:
            self._write_lock.release()

    def _write(self, batch: list[PendingEvent]) -> int:
        alias = app_settings.TRACE_DATABASE
        try:
            self._insert(alias, batch)
            self._away = False
            return len(batch)
        except (OperationalError, InterfaceError):
            # The database is away: the caller keeps the batch for the next write.
            raise
        except (DataError, IntegrityError) as exc:
            if len(batch) == 1:
                self._report_loss(1, exc)
                return 0
            # One bad row must not cost the whole batch: write them one by one.
            return sum(self._write([event]) for event in batch)
        except Exception as exc:
            self._report_loss(len(batch), exc)
            return 0

    def _insert(self, alias: str, batch: list[PendingEvent]) -> None:
        # Imported on first use: this module loads with the logging configuration, before the models.
        from tracing_app.traces import writer

        pid = os.getpid()
        host = self._host
        aware = settings.USE_TZ
        new_row = writer.new_event_row
        rows = []
        for event in batch:
            cid, hop, cause, sequence, kind, name, status, took, error, at, trace, span, attrs, raw = event
            if (
                len(cid) > 128
                or len(hop) > 128
                or len(cause) > 128
                or len(kind) > 32
                or len(name) > 255
                or len(status) > 32
                or "\x00" in f"{cid}{hop}{cause}{kind}{name}{status}"
            ):
                # Rare (record() called with oversized values): the whole row goes through cut().
                cid, hop, cause = cut(cid, 128), cut(hop, 128), cut(cause, 128)
                kind, name, status = cut(kind, 32), cut(name, 255), cut(status, 32)
            rows.append(
                new_row(
                    (
                        cid,
                        hop,
                        cause,
                        sequence,
                        kind,
                        name,
                        status,
                        took,
                        error,
                        _moment(at, aware),
                        host,
                        pid,
                        trace[:32],
                        span[:16],
                        _attributes_of(attrs, kind) if raw else attrs,
                    )
                )
            )
        writer.write(alias, rows)

    def _save_drops(self) -> None:
        from tracing_app.traces import drops

        try:
            drops.add(
                app_settings.TRACE_DATABASE,
                self._host,
                os.getpid(),
                _moment(self._process_started, settings.USE_TZ),
                self._unsaved_drops,
            )
        except (OperationalError, InterfaceError):
            # The database went away again: the count waits for the next write.
            return
        except Exception as exc:
            logger.warning(
                "Could not store the count of dropped trace events: %s: %s",
                type(exc).__name__,
                safe_repr(str(exc), 300),
            )
        self._unsaved_drops = 0

    def _keep(self, batch: list[PendingEvent], exc: BaseException) -> None:
        """Put a batch the database could not take back in front of the buffer, within its bound."""
        if not self._away:
            logger.warning(
                "Trace events wait in memory: the database is unreachable (%s: %s)",
                type(exc).__name__,
                safe_repr(str(exc), 300),
            )
        self._away = True
        queue = self._queue
        queue.extendleft(reversed(batch))
        # Over the bound the newest events go, as when the buffer is full: the oldest tell how it began.
        while len(queue) > app_settings.TRACE_BUFFER_SIZE:
            queue.pop()
            self._dropped += 1

    @staticmethod
    def _report_loss(count: int, exc: BaseException) -> None:
        logger.warning(
            "Could not record %d trace event(s): %s: %s",
            count,
            type(exc).__name__,
            safe_repr(str(exc), 300),
            exc_info=not isinstance(exc, DatabaseError),
        )


pending_events = EventBuffer()
os.register_at_fork(after_in_child=pending_events.after_fork)
atexit.register(pending_events.flush, 30.0)


@receiver(setting_changed, dispatch_uid="tracing_app.traces.buffer.settings")
def _wake_on_settings_change(setting: str, **kwargs: Any) -> None:
    # The writer may be waiting out a long interval; let it read the new one now.
    if setting == "TRACING_APP":
        pending_events.retime()
