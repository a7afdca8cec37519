"""Checks of the trace store's settings (IDs tracing_app.E5xx)."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error
from django.utils.module_loading import import_string

from tracing_app.checks.values import known_database, positive_numbers
from tracing_app.conf import app_settings
from tracing_app.traces.retention import parse_duration

_POSITIVE = (
    "TRACE_FLUSH_INTERVAL",
    "TRACE_BATCH_SIZE",
    "TRACE_BUFFER_SIZE",
    "TRACE_MAX_ATTRIBUTES_BYTES",
    "TRACE_PURGE_BATCH_SIZE",
    "TRACE_ADMIN_PAGE_SIZE",
    "TRACE_MAX_EVENTS_SHOWN",
)


def check_trace_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    return [
        *_retention(app_settings.TRACE_RETENTION),
        *known_database("TRACE_DATABASE", "tracing_app.E502"),
        *positive_numbers(_POSITIVE, "tracing_app.E503"),
        *_compensation_tasks(app_settings.TRACE_COMPENSATION_TASKS),
        *_admin_links(app_settings.TRACE_ADMIN_LINKS),
    ]


def _retention(retention: Any) -> list[CheckMessage]:
    try:
        parse_duration(retention)
    except ValueError as exc:
        return [Error(f"TRACING_APP['TRACE_RETENTION'] is invalid: {exc}.", id="tracing_app.E501")]
    return []


def _compensation_tasks(words: Any) -> list[CheckMessage]:
    if not isinstance(words, str) and all(isinstance(word, str) and word for word in words):
        return []
    return [
        Error(
            "TRACING_APP['TRACE_COMPENSATION_TASKS'] must be a list of non-empty task name fragments, "
            f"not {words!r}.",
            id="tracing_app.E504",
        )
    ]


def _admin_links(links: Any) -> list[CheckMessage]:
    if isinstance(links, str):
        try:
            hook = import_string(links)
        except ImportError as exc:
            return [
                Error(f"TRACING_APP['TRACE_ADMIN_LINKS'] cannot be imported: {exc}.", id="tracing_app.E506")
            ]
        if callable(hook):
            return []
    elif isinstance(links, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in links.items()):
        return []
    return [
        Error(
            "TRACING_APP['TRACE_ADMIN_LINKS'] must map attribute keys to admin URL names, or be the dotted "
            f"path of a function (key, value) -> [(label, url)], not {links!r}.",
            id="tracing_app.E505",
        )
    ]
