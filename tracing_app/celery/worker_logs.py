"""Worker logs: one format per stream, with the correlation and task IDs on every line, Celery's too.

``celery worker`` replaces the root logger's handlers with its own (``worker_hijack_root_logger``) and
formats them its way, while the project's ``LOGGING`` handlers on other loggers keep theirs: without
care one stream mixes Celery's text with the project's JSON, or the reverse. After Celery's logging
setup every handler in the process gets the correlation and task filters, and then one format:

- JSON (``CELERY_JSON_LOGS`` true, or unset while ``LOGGING`` formats with ``JsonFormatter``): every
  stream handler writes :class:`~tracing_app.logs.JsonFormatter` lines.
- text (``CELERY_JSON_LOGS`` false, or unset with a text ``LOGGING``): the project's handlers keep their
  formats, and Celery's keep theirs with the correlation ID put before the message.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

from celery._state import get_current_task
from celery.utils.log import ColorFormatter, get_multiprocessing_logger

from tracing_app.conf import app_settings
from tracing_app.logs import CorrelationIdFilter, JsonFormatter, logging_writes_json

_ID_FIELD = "%(correlation_id)s"

#: (task ID, task name) of the task whose callbacks the worker's main process runs (received, failure,
#: time limit, revoke): there Celery has no current task. Set by :mod:`tracing_app.celery.worker`.
main_process_task: ContextVar[tuple[str, str] | None] = ContextVar(
    "tracing_app.celery.main_process_task", default=None
)


class TaskFilter(logging.Filter):
    """Adds ``task_id`` and ``task_name``: of the running task, or for a line Celery writes about a task
    outside it (the main process's "Task ... received"), of that task (Celery's ``data`` extra)."""

    def filter(self, record: logging.LogRecord) -> bool:
        attrs = record.__dict__
        if "task_id" not in attrs:
            task = get_current_task()
            request = task.request if task is not None else None
            if request is not None and request.id is not None:
                attrs["task_id"] = request.id
                attrs["task_name"] = task.name
            else:
                data = attrs.get("data")
                about = data if isinstance(data, dict) and "id" in data else None
                hop = main_process_task.get()
                empty = app_settings.LOG_EMPTY_VALUE
                if about:
                    attrs["task_id"], attrs["task_name"] = about["id"], about.get("name", empty)
                elif hop is not None:
                    attrs["task_id"], attrs["task_name"] = hop
                else:
                    attrs["task_id"] = attrs["task_name"] = empty
        return True


def worker_logs_json() -> bool:
    """``CELERY_JSON_LOGS``, or when it is unset (None) whether the project's ``LOGGING`` writes JSON."""
    setting = app_settings.CELERY_JSON_LOGS
    return logging_writes_json() if setting is None else bool(setting)


def instrument_handlers(
    target: logging.Logger, text_format: str | None = None, colorize: bool = False
) -> None:
    """Add the correlation and task filters to ``target``'s handlers, then the worker's one format: JSON,
    or for Celery's own text formatters ``text_format`` with the correlation ID in it."""
    json_logs = worker_logs_json()
    for handler in target.handlers:
        _add_filters(handler)
        if json_logs:
            handler.setFormatter(JsonFormatter())
        elif text_format and isinstance(handler.formatter, ColorFormatter):
            handler.setFormatter(
                type(handler.formatter)(  # type: ignore[call-arg]  # celery-types lacks datefmt
                    with_correlation_id(text_format), datefmt=handler.formatter.datefmt, use_color=colorize
                )
            )


def with_correlation_id(text_format: str) -> str:
    """``text_format`` with the correlation ID before the message, unless it already names it."""
    if "correlation_id" in text_format:
        return text_format
    if "%(message)s" in text_format:
        return text_format.replace("%(message)s", f"[{_ID_FIELD}] %(message)s", 1)
    return f"{text_format} [{_ID_FIELD}]"


def after_setup_logger(
    logger: logging.Logger | None = None, format: str | None = None, colorize: bool = False, **kwargs: Any
) -> None:
    """Celery configured the root logger: instrument it, the multiprocessing logger and the project's
    own handlers on every other logger."""
    if logger is not None:
        instrument_handlers(logger, format, colorize)
    multiprocessing_logger = get_multiprocessing_logger()
    if multiprocessing_logger is not None:
        instrument_handlers(multiprocessing_logger, format, colorize)
    _instrument_project_handlers(worker_logs_json())


def after_setup_task_logger(
    logger: logging.Logger | None = None, format: str | None = None, colorize: bool = False, **kwargs: Any
) -> None:
    if logger is not None:
        instrument_handlers(logger, format, colorize)


def _instrument_project_handlers(json_logs: bool) -> None:
    """Handlers ``LOGGING`` put on other loggers write to the same streams: the same filters, and in
    JSON mode the same format (the text mode keeps theirs)."""
    for candidate in list(logging.Logger.manager.loggerDict.values()):
        if not isinstance(candidate, logging.Logger):
            continue
        for handler in candidate.handlers:
            _add_filters(handler)
            if json_logs and isinstance(handler, logging.StreamHandler):
                handler.setFormatter(JsonFormatter())


def _add_filters(handler: logging.Handler) -> None:
    if not any(isinstance(f, CorrelationIdFilter) for f in handler.filters):
        handler.addFilter(CorrelationIdFilter())
    if not any(isinstance(f, TaskFilter) for f in handler.filters):
        handler.addFilter(TaskFilter())
