"""A logging handler that stores log records of a transaction as "log" trace events.

Add it to ``LOGGING`` (dictConfig) next to your other handlers::

    "handlers": {
        "trace_events": {"class": "tracing_app.traces.log_handler.TraceEventHandler", "level": "WARNING"},
    },
    "root": {"handlers": ["console", "trace_events"], "level": "INFO"},

Records outside a transaction are ignored. WARNING records are stored for sampled transactions; ERROR
and above always (they are errors). A record whose exception is already stored as an error event (an
uncaught view exception, a failed task) is not stored twice, nor are Django's ``django.request`` lines
that only restate a response's status (the ``request.finished`` event carries it). The recorder's own records
(``tracing_app.recorder``) are never stored, and a record logged while one is being stored is ignored,
so a failing recorder cannot feed itself.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from tracing_app.conf import app_settings
from tracing_app.context import current
from tracing_app.traces.recorder import RECORDED_MARK, describe_exception, emit, mark_recorded

_IGNORED_LOGGER = "tracing_app.recorder"


class TraceEventHandler(logging.Handler):
    """Stores records at or above its level (default WARNING) on the current transaction's trace."""

    def __init__(self, level: int | str = logging.WARNING) -> None:
        super().__init__(level)
        self._busy = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        ctx = current()
        if ctx is None or getattr(self._busy, "active", False) or record.name.startswith(_IGNORED_LOGGER):
            return
        error = record.levelno >= logging.ERROR
        if not (error or ctx.sampled) or not app_settings.TRACE_ENABLED:
            return
        exc = record.exc_info[1] if record.exc_info else None
        if type(exc).__name__ == "ExceptionWithTraceback":
            # Celery's worker logs a pool process's exception in billiard's wrapper.
            exc = exc.exc  # type: ignore[union-attr]
        if exc is not None and getattr(exc, RECORDED_MARK, False):
            return
        if exc is None and record.name == "django.request" and hasattr(record, "status_code"):
            # "Not Found: /x", "Service Unavailable: /y": the request.finished event shows that status.
            return
        self._busy.active = True
        try:
            attributes: dict[str, Any] = {
                "message": record.getMessage(),
                "location": f"{record.module}:{record.lineno}",
            }
            if exc is not None:
                details = describe_exception(exc, record.exc_info[2] if record.exc_info else None)
                attributes["exception"] = details["exception"]
                attributes["exception_message"] = details["message"]
                attributes["traceback"] = details["traceback"]
                mark_recorded(exc)
            emit(ctx, "log", name=record.name, status=record.levelname, attributes=attributes, error=error)
        except Exception:
            self.handleError(record)
        finally:
            self._busy.active = False
