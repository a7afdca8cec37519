"""System checks for the idempotency settings (IDs tracing_app.E4xx / W4xx).

A misconfiguration here would not fail loudly at run time: views listed in ``IDEMPOTENCY_VIEWS`` without
the middleware simply run unguarded, and a client's retry runs twice.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.core.checks import Warning as CheckWarning
from django.utils.module_loading import import_string

from tracing_app.checks import known_database, positive_numbers
from tracing_app.conf import app_settings

MIDDLEWARE_PATH = "tracing_app.idempotency.http.IdempotencyMiddleware"

_POSITIVE = (
    "IDEMPOTENCY_KEY_MAX_LENGTH",
    "IDEMPOTENCY_TTL",
    "IDEMPOTENCY_LEASE",
    "IDEMPOTENCY_TASK_LEASE",
    "IDEMPOTENCY_MAX_RESPONSE_BYTES",
    "IDEMPOTENCY_PURGE_BATCH_SIZE",
)


@register(Tags.compatibility)
def check_idempotency_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages = known_database("IDEMPOTENCY_DATABASE", "tracing_app.E401")
    middleware = list(settings.MIDDLEWARE)
    if app_settings.IDEMPOTENCY_VIEWS and MIDDLEWARE_PATH not in middleware:
        messages.append(
            Error(
                "TRACING_APP['IDEMPOTENCY_VIEWS'] lists views, but IdempotencyMiddleware is not in "
                "MIDDLEWARE: those views run unguarded.",
                hint=f"Add {MIDDLEWARE_PATH!r} at the end of MIDDLEWARE.",
                id="tracing_app.E402",
            )
        )
    elif MIDDLEWARE_PATH in middleware and middleware[-1] != MIDDLEWARE_PATH:
        messages.append(
            CheckWarning(
                "IdempotencyMiddleware is not last in MIDDLEWARE: it answers guarded requests from "
                "process_view(), so the process_view() of middleware after it does not run for them.",
                hint="Move it to the end of MIDDLEWARE.",
                id="tracing_app.W403",
            )
        )
    messages += positive_numbers(_POSITIVE, "tracing_app.E404")
    scope = app_settings.IDEMPOTENCY_SCOPE
    if isinstance(scope, str):
        try:
            import_string(scope)
        except ImportError as exc:
            messages.append(
                Error(f"TRACING_APP['IDEMPOTENCY_SCOPE'] cannot be imported: {exc}.", id="tracing_app.E405")
            )
    return messages
