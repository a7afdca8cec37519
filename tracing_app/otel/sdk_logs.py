"""OpenTelemetry's own log lines about untrusted input: escaped, bounded, and inside the transaction.

The SDK warns about malformed ``baggage`` and ``tracestate`` members by quoting them in full: a hostile
caller chooses the text (control characters, kilobytes of it) of a WARNING line on every request. The
:class:`SdkLogFilter` on the SDK's loggers (:data:`GUARDED_LOGGERS`) rewrites each string argument of a
record with :func:`tracing_app.ids.safe_repr`.

Those lines are written while OpenTelemetry's middleware extracts the incoming headers, before the
correlation middleware has made the request's transaction current. During extraction they are held
(:class:`Held`) in the extracted context instead, and :func:`release` logs them once the transaction
starts (the request edge, a task run, :func:`tracing_app.otel.continue_trace`), carrying its
correlation ID and the server span's IDs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextvars import ContextVar
from typing import cast

from opentelemetry import context as otel_context

from tracing_app.conf import app_settings
from tracing_app.context import TraceContext
from tracing_app.ids import safe_repr

#: SDK loggers that quote header values (baggage, tracestate) or attribute values they reject.
GUARDED_LOGGERS = (
    "opentelemetry.baggage",
    "opentelemetry.baggage.propagation",
    "opentelemetry.trace.span",
    "opentelemetry.trace.propagation.tracecontext",
    "opentelemetry.attributes",
)
#: tracing_app's own propagation logger: its lines are already escaped, and held like the SDK's.
OWN_LOGGER = "tracing_app.otel.propagation"

# Characters of each hostile value kept in a log line.
VALUE_LIMIT = 64

_holding: ContextVar[list[logging.LogRecord] | None] = ContextVar("tracing_app.otel.holding", default=None)
_HELD = otel_context.create_key("tracing_app.held_log_records")


class SdkLogFilter(logging.Filter):
    """Escapes and bounds a record's string arguments (``escape``); holds records during extraction."""

    def __init__(self, escape: bool = True) -> None:
        super().__init__()
        self.escape = escape

    def filter(self, record: logging.LogRecord) -> bool:
        if self.escape:
            _escape(record)
        held = _holding.get()
        if held is None:
            return True
        held.append(record)
        return False


def _escape(record: logging.LogRecord) -> None:
    args = record.args
    if isinstance(args, Mapping):
        record.args = {key: _bounded(value) for key, value in args.items()}
    elif args:
        record.args = tuple(_bounded(value) for value in args)
    elif isinstance(record.msg, str) and (len(record.msg) > 4 * VALUE_LIMIT or not record.msg.isprintable()):
        record.msg = safe_repr(record.msg, 4 * VALUE_LIMIT)


def _bounded(value: object) -> object:
    if value is None or isinstance(value, int | float):
        return value
    return safe_repr(value, VALUE_LIMIT)


def install() -> list[tuple[logging.Logger, SdkLogFilter]]:
    """Put the filters on the SDK's loggers and on tracing_app's propagation logger; returns them."""
    installed = [(logging.getLogger(name), SdkLogFilter()) for name in GUARDED_LOGGERS]
    installed.append((logging.getLogger(OWN_LOGGER), SdkLogFilter(escape=False)))
    for target, log_filter in installed:
        target.addFilter(log_filter)
    return installed


def uninstall(installed: list[tuple[logging.Logger, SdkLogFilter]]) -> None:
    for target, log_filter in installed:
        target.removeFilter(log_filter)


class Held:
    """Collect the guarded loggers' records instead of emitting them, for the length of a ``with`` block.

    A class rather than a generator context manager: it runs on every request's extraction.
    """

    __slots__ = ("_token", "records")

    def __init__(self) -> None:
        self.records: list[logging.LogRecord] = []

    def __enter__(self) -> list[logging.LogRecord]:
        self._token = _holding.set(self.records)
        return self.records

    def __exit__(self, *exc_info: object) -> None:
        _holding.reset(self._token)


def keep(records: list[logging.LogRecord], context: otel_context.Context) -> otel_context.Context:
    """``context`` carrying ``records`` (and any it already held) until :func:`release`."""
    if not records:
        return context
    earlier = cast("list[logging.LogRecord] | None", otel_context.get_value(_HELD, context))
    if earlier:
        earlier.extend(records)
        return context
    return otel_context.set_value(_HELD, records, context)


def release(ctx: TraceContext) -> None:
    """Log the records held in the current context, once, as lines of the transaction ``ctx``."""
    records = cast("list[logging.LogRecord] | None", otel_context.get_value(_HELD))
    if not records:
        return
    empty = app_settings.LOG_EMPTY_VALUE
    pending = list(records)
    records.clear()
    for record in pending:
        record.__dict__["correlation_id"] = ctx.correlation_id
        record.__dict__["causation_id"] = ctx.causation_id or empty
        # Straight to the handlers: the logger's filters saw (and escaped) the record when it was made.
        logging.getLogger(record.name).callHandlers(record)
