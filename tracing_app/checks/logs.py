"""Check that LOGGING handlers formatting the correlation fields have the filter that adds them."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error

from tracing_app.logs import CorrelationIdFilter, configured_class

FILTER_PATH = "tracing_app.logs.CorrelationIdFilter"
# The record fields CorrelationIdFilter adds, as %-, {- or $-style format fields.
_FILTER_FIELDS = re.compile(
    r"%\((correlation_id|causation_id|trace_id|span_id)\)"
    r"|\{(correlation_id|causation_id|trace_id|span_id)[}:!]"
    r"|\$\{?(correlation_id|causation_id|trace_id|span_id)\b"
)


def check_logging(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """A LOGGING handler whose format names the filter's fields must have the filter: without it every
    record it writes fails at run time ("--- Logging error ---", KeyError) instead of being logged."""
    config = getattr(settings, "LOGGING", None) or {}
    formatters = config.get("formatters") or {}
    ours = {
        name
        for name, spec in (config.get("filters") or {}).items()
        if issubclass(configured_class(spec) or object, CorrelationIdFilter)
    }
    messages: list[CheckMessage] = []
    for name, handler in (config.get("handlers") or {}).items():
        formatter = formatters.get(handler.get("formatter"), {})
        fields = _FILTER_FIELDS.search(str(formatter.get("format") or formatter.get("fmt") or ""))
        if fields and not ours.intersection(handler.get("filters") or ()):
            field = next(group for group in fields.groups() if group)
            messages.append(
                Error(
                    f"LOGGING handler {name!r} formats {field!r} (formatter "
                    f"{handler.get('formatter')!r}) but lacks the correlation filter: each record it "
                    'writes fails with "--- Logging error ---".',
                    hint=f'Define a filter {{"()": "{FILTER_PATH}"}}; list it in the handler\'s "filters".',
                    id="tracing_app.E014",
                )
            )
    return messages
