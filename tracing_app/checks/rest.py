"""Checks of the Django REST framework wiring: the envelope renderer needs tracing_app's handler."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from tracing_app.checks.values import importable
from tracing_app.conf import app_settings

REST_HANDLER = "tracing_app.rest.exception_handler"
REST_RENDERER = "tracing_app.rest.EnvelopeJSONRenderer"


def check_rest_framework(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    rest = getattr(settings, "REST_FRAMEWORK", None) or {}
    handler = rest.get("EXCEPTION_HANDLER")
    messages: list[CheckMessage] = []
    if REST_RENDERER in rest.get("DEFAULT_RENDERER_CLASSES", ()) and handler not in (None, REST_HANDLER):
        messages.append(
            Warning(
                f"REST_FRAMEWORK['EXCEPTION_HANDLER'] is {handler!r}, not {REST_HANDLER!r}: with the "
                "envelope renderer its error bodies are wrapped as details of a generic error, and DRF's "
                "error codes are lost.",
                hint=f"Set it to {REST_HANDLER!r} and name yours in TRACING_APP['DRF_EXCEPTION_HANDLER']: "
                "it is called instead of DRF's, and its codes are kept.",
                id="tracing_app.W012",
            )
        )
    own = app_settings.DRF_EXCEPTION_HANDLER
    if own == REST_HANDLER:
        messages.append(
            Error(
                f"TRACING_APP['DRF_EXCEPTION_HANDLER'] names {REST_HANDLER!r} itself.",
                hint="Name the project's own handler, or leave it unset for DRF's.",
                id="tracing_app.E013",
            )
        )
    elif own:
        messages += importable("DRF_EXCEPTION_HANDLER", own, "tracing_app.E015")
    return messages
