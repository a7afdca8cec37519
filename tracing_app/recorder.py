"""Trace event recording: sampled, buffered in memory, written in batches off the request path.

:func:`record` appends one event for the current transaction to an in-process buffer and returns; it
never touches the database and never raises. A daemon thread per process writes the buffer every
``TRACE_FLUSH_INTERVAL`` seconds (sooner once ``TRACE_BATCH_SIZE`` events wait), with one INSERT per batch,
on its own database connection, so the writes never join a request's or a task's transaction: a
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

Events still buffered when a process ends are written by :func:`flush`, which runs at interpreter exit
and on Celery's ``worker_process_shutdown`` (prefork children leave through ``os._exit``, skipping
``atexit``). Tests call :func:`flush` to see their events at once.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import math
import os
import re
import socket
import threading
import time
import traceback
from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime
from types import TracebackType
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
from tracing_app.context import TraceContext, _current
from tracing_app.ids import safe_repr
from tracing_app.logs import current_span_ids

logger = logging.getLogger("tracing_app.recorder")

# Exceptions already stored as an error event carry this attribute, so the log record Django or Celery
# writes for the same exception is not stored a second time.
RECORDED_MARK = "_tracing_app_recorded"

_MAX_DEPTH = 4
_MAX_ITEMS = 50
_MAX_STRING = 2000
_REDACTED = "[redacted]"


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
    # Attributes not cleaned yet: the writer thread cleans them (see emit's ``owned``).
    raw: bool = False


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
    ctx = _current.get()
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
) -> None:
    """:func:`record` for an explicit context (the HTTP edge records before its context is current).

    ``sequence`` is for an event whose clock value was already taken (a published task's header);
    otherwise the context's clock is advanced. ``owned`` says ``attributes`` is a new dict whose values
    nobody changes afterwards (the HTTP edge's strings): it is then cleaned in the writer thread instead
    of being copied on the caller's.
    """
    if not (error or ctx.sampled) or not app_settings.TRACE_ENABLED:
        return
    try:
        span = current_span_ids()
        _recorder.enqueue(
            PendingEvent(
                ctx.correlation_id,
                ctx.hop_id,
                ctx.causation_id or "",
                ctx.tick() if sequence is None else sequence,
                kind,
                name,
                status,
                duration_ms,
                error,
                time.time(),
                span[0] if span else "",
                span[1] if span else "",
                (attributes if owned else clean_attributes(attributes)) if attributes else {},
                owned,
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
    return _recorder.flush(timeout)


def describe_exception(exc: BaseException, tb: TracebackType | None = None) -> dict[str, Any]:
    """The attributes of an error event: exception type, message and the end of its traceback."""
    lines = traceback.format_exception(type(exc), exc, tb or exc.__traceback__)
    text = "".join(lines)
    return {
        "exception": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "message": _cut(str(exc)),
        "traceback": text if len(text) <= _MAX_STRING else "..." + text[-_MAX_STRING:],
    }


def mark_recorded(exc: BaseException) -> None:
    """Note that ``exc`` is stored as an error event (see :data:`RECORDED_MARK`)."""
    with contextlib.suppress(AttributeError, TypeError):
        setattr(exc, RECORDED_MARK, True)


def clean_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-safe copy of ``attributes`` within ``TRACE_MAX_ATTRIBUTES_BYTES``.

    Values are copied now, so later changes by the caller are not recorded. Keys matching
    ``TRACE_REDACT_KEYS`` are masked at every depth; strings lose NUL characters (PostgreSQL refuses
    them); anything that is not JSON becomes its bounded ``repr``. If the result is still too large,
    strings are cut shorter, and as a last resort the event keeps only a note of the size.
    """
    redact = app_settings.redact_regex
    limit = app_settings.TRACE_MAX_ATTRIBUTES_BYTES
    string_limit = _MAX_STRING
    while True:
        copy = _Copy(redact, string_limit)
        cleaned = copy.mapping(attributes, 0)
        # The bound is never below the real size, so a copy within it needs no encoding: most events.
        if copy.size_bound <= limit:
            return cleaned
        size = len(json.dumps(cleaned, ensure_ascii=False))
        if size <= limit:
            return cleaned
        if string_limit <= 64:
            return {"truncated": True, "bytes": size}
        string_limit //= 4


class _Copy:
    """One pass of :func:`clean_attributes`: the copy, and while it is made, an upper bound on the length
    of its JSON (``json.dumps(copy, ensure_ascii=False)``), counted from lengths without encoding."""

    __slots__ = ("redact", "size_bound", "string_limit")

    def __init__(self, redact: re.Pattern[str], string_limit: int) -> None:
        self.redact = redact
        self.string_limit = string_limit
        self.size_bound = 0

    def mapping(self, value: Mapping[Any, Any], depth: int) -> dict[str, Any]:
        cleaned: dict[str, Any] = {}
        # "{}", and per item ": " and ", " (one separator more than written: still a bound).
        self.size_bound += 2
        for index, (key, item) in enumerate(value.items()):
            self.size_bound += 4
            if index == _MAX_ITEMS:
                cleaned[self.counted("...")] = self.counted(f"{len(value) - _MAX_ITEMS} more")
                break
            name = self.text(str(key), 128)
            if self.redact.search(name.lower()):
                cleaned[name] = self.counted(_REDACTED)
            else:
                cleaned[name] = self.value(item, depth + 1)
        return cleaned

    def value(self, value: Any, depth: int) -> Any:
        if isinstance(value, str):
            return self.text(value, self.string_limit)
        if value is None or isinstance(value, bool):
            self.size_bound += 5
            return value
        if isinstance(value, int):
            # Digits plus sign: log10(2) < 1/3.
            self.size_bound += value.bit_length() // 3 + 2
            return value
        if isinstance(value, float):
            if math.isfinite(value):
                self.size_bound += 24  # the longest repr: "-2.2250738585072014e-308"
                return value
            return self.counted(str(value))
        if depth < _MAX_DEPTH:
            if isinstance(value, Mapping):
                return self.mapping(value, depth)
            if isinstance(value, list | tuple | set | frozenset):
                self.size_bound += 2 + 2 * min(len(value), _MAX_ITEMS + 1)
                items = [self.value(item, depth + 1) for item in list(value)[:_MAX_ITEMS]]
                if len(value) > _MAX_ITEMS:
                    items.append(self.counted(f"... {len(value) - _MAX_ITEMS} more"))
                return items
        try:
            return self.text(repr(value), self.string_limit)
        except Exception:
            return self.counted(f"<unrepresentable {type(value).__name__}>")

    def text(self, value: str, limit: int) -> str:
        return self.counted(_cut(value, limit))

    def counted(self, text: str) -> str:
        # Quoted, each character escaped in at most two characters ('"' as '\\"') when printable, else
        # six (a control character as "\u001f").
        self.size_bound += len(text) * (2 if text.isprintable() else 6) + 2
        return text


def _cut(text: str, limit: int = _MAX_STRING) -> str:
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


def _moment(created: float, aware: bool) -> datetime:
    moment = datetime.fromtimestamp(created, UTC)
    return moment if aware else timezone.make_naive(moment)


def _attributes_of(event: PendingEvent) -> dict[str, Any]:
    """The event's attributes as stored, cleaned here if the caller left that to the writer."""
    if not event.raw:
        return event.attributes  # type: ignore[return-value]  (clean_attributes made it a dict)
    try:
        return clean_attributes(event.attributes)
    except Exception:
        logger.warning("Could not record the attributes of a %s trace event", safe_repr(event.kind, 32))
        return {}


class Recorder:
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
        elif len(queue) >= app_settings.TRACE_BATCH_SIZE:
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
        while True:
            self._wakeup.wait(app_settings.TRACE_FLUSH_INTERVAL)
            self._wakeup.clear()
            if self._retime:
                self._retime = False
                continue
            try:
                self.flush(timeout=None)
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
            batch_size = app_settings.TRACE_BATCH_SIZE
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
        from tracing_app.traces import writer

        pid = os.getpid()
        host = self._host
        aware = settings.USE_TZ
        rows = []
        for event in batch:
            moment = _moment(event.created, aware)
            rows.append(
                writer.EventRow(
                    _cut(event.correlation_id, 128),
                    _cut(event.hop_id, 128),
                    _cut(event.causation_id, 128),
                    event.sequence,
                    _cut(event.kind, 32),
                    _cut(event.name, 255),
                    _cut(event.status, 32),
                    event.duration_ms,
                    event.error,
                    moment,
                    host,
                    pid,
                    event.trace_id[:32],
                    event.span_id[:16],
                    _attributes_of(event),
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


_recorder = Recorder()
os.register_at_fork(after_in_child=_recorder.after_fork)
atexit.register(flush)


@receiver(setting_changed, dispatch_uid="tracing_app.recorder.settings")
def _wake_on_settings_change(setting: str, **kwargs: Any) -> None:
    # The writer may be waiting out a long interval; let it read the new one now.
    if setting == "TRACING_APP":
        _recorder.retime()
