"""Checks of the outbox settings (IDs tracing_app.E6xx)."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage

from tracing_app.checks.values import known_database, positive_numbers

_POSITIVE = (
    "OUTBOX_RELAY_INTERVAL",
    "OUTBOX_RELAY_DELAY",
    "OUTBOX_RELAY_BATCH_SIZE",
    "OUTBOX_RELAY_MAX_BACKOFF",
)


def check_outbox_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    return [
        *known_database("OUTBOX_DATABASE", "tracing_app.E601"),
        *positive_numbers(_POSITIVE, "tracing_app.E602"),
    ]
