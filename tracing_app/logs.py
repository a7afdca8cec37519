"""Logging: a filter that stamps records with the transaction's IDs, and a one-line JSON formatter.

Both are meant for ``LOGGING`` dictConfig::

    "filters": {"correlation": {"()": "tracing_app.logs.CorrelationIdFilter"}},
    "formatters": {"json": {"()": "tracing_app.logs.JsonFormatter"}},
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from tracing_app.conf import app_settings
from tracing_app.context import current

__all__ = [
    "CorrelationIdFilter",
    "JsonFormatter",
    "current_span_ids",
    "logging_writes_json",
    "set_span_source",
]

SpanSource = Callable[[], "tuple[str, str] | None"]
_span_source: SpanSource | None = None


def set_span_source(source: SpanSource | None) -> None:
    """Install the function that returns the current (trace_id, span_id) as hex, or None.

    The OpenTelemetry integration installs one when it is enabled; without it records carry the empty
    value, and the correlation ID never depends on a span being current.
    """
    global _span_source
    _span_source = source


def current_span_ids() -> tuple[str, str] | None:
    """The current (trace_id, span_id) in hex from the installed span source, or None."""
    return _span_source() if _span_source is not None else None


class CorrelationIdFilter(logging.Filter):
    """Adds ``correlation_id``, ``causation_id``, ``trace_id`` and ``span_id`` to every record.

    Outside a transaction each is ``LOG_EMPTY_VALUE`` (default ``"-"``). Values a record already carries
    (set with ``extra=`` or by another process) are kept. The filter never drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        attrs = record.__dict__
        empty = app_settings.LOG_EMPTY_VALUE
        if "correlation_id" not in attrs:
            ctx = current()
            if ctx is None:
                attrs["correlation_id"] = attrs["causation_id"] = empty
            else:
                attrs["correlation_id"] = ctx.correlation_id
                attrs["causation_id"] = ctx.causation_id or empty
        if "trace_id" not in attrs:
            ids = current_span_ids()
            if ids is None:
                attrs["trace_id"] = attrs["span_id"] = empty
            else:
                attrs["trace_id"], attrs["span_id"] = ids
        return True


# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is emitted too.
_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "correlation_id", "causation_id", "trace_id", "span_id", "taskName"}
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, ASCII-only, so no value can break the line or the document.

    Keys: ``timestamp`` (ISO 8601, UTC, milliseconds), ``level``, ``logger``, ``message``,
    ``correlation_id``, ``causation_id``, ``trace_id``, ``span_id``, ``process``, ``thread``, then
    ``exception`` / ``stack`` when present and any ``extra=`` fields (non-JSON values as strings).
    Flat keys map directly onto Elasticsearch, BigQuery and Loki fields.
    """

    def format(self, record: logging.LogRecord) -> str:
        attrs = record.__dict__
        empty = app_settings.LOG_EMPTY_VALUE
        data: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": attrs.get("correlation_id", empty),
            "causation_id": attrs.get("causation_id", empty),
            "trace_id": attrs.get("trace_id", empty),
            "span_id": attrs.get("span_id", empty),
            "process": record.process,
            "thread": record.threadName,
        }
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        for key, value in attrs.items():
            if key not in _STANDARD_ATTRS and key not in data:
                data[key] = value
        return json.dumps(data, default=str, ensure_ascii=True)


def configured_class(spec: Any) -> type | None:
    """The class a ``LOGGING`` filter or formatter entry builds (its ``"()"`` or ``"class"``), or None."""
    if not isinstance(spec, dict):
        return None
    factory = spec.get("()") or spec.get("class")
    if isinstance(factory, str):
        try:
            factory = import_string(factory)
        except ImportError:
            return None
    return factory if isinstance(factory, type) else None


def logging_writes_json() -> bool:
    """Whether the project's ``LOGGING`` formats with :class:`JsonFormatter` (or a subclass)."""
    formatters = (getattr(settings, "LOGGING", None) or {}).get("formatters") or {}
    return any(
        issubclass(found, JsonFormatter)
        for found in map(configured_class, formatters.values())
        if found is not None
    )
