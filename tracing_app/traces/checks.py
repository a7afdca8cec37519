"""System checks for the trace store's settings (IDs tracing_app.E5xx)."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Tags, register

from tracing_app.checks import known_database, positive_numbers
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


@register(Tags.compatibility)
def check_trace_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    try:
        parse_duration(app_settings.TRACE_RETENTION)
    except ValueError as exc:
        errors.append(Error(f"TRACING_APP['TRACE_RETENTION'] is invalid: {exc}.", id="tracing_app.E501"))
    errors += known_database("TRACE_DATABASE", "tracing_app.E502")
    errors += positive_numbers(_POSITIVE, "tracing_app.E503")
    return errors
