"""Check that the correlation middleware is in MIDDLEWARE, before anything that logs or answers."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from tracing_app.conf import app_settings

MIDDLEWARE_PATH = "tracing_app.middleware.CorrelationIdMiddleware"


def check_middleware(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    middleware = list(getattr(settings, "MIDDLEWARE", None) or ())
    if MIDDLEWARE_PATH not in middleware:
        return [
            Error(
                f"{MIDDLEWARE_PATH} is not in MIDDLEWARE: requests get no correlation ID.",
                hint="Add it as the first entry of MIDDLEWARE.",
                id="tracing_app.E010",
            )
        ]
    allowed = set(app_settings.MIDDLEWARE_ALLOWED_BEFORE)
    before = [path for path in middleware[: middleware.index(MIDDLEWARE_PATH)] if path not in allowed]
    if not before:
        return []
    return [
        Warning(
            f"{MIDDLEWARE_PATH} comes after {', '.join(before)}: whatever those log, and any response "
            "they return, carries no correlation ID.",
            hint="Move it to the top of MIDDLEWARE, or list a harmless middleware in "
            "TRACING_APP['MIDDLEWARE_ALLOWED_BEFORE'].",
            id="tracing_app.W011",
        )
    ]
