"""System checks: a misconfigured ``TRACING_APP``, MIDDLEWARE, REST_FRAMEWORK, LOGGING or Celery wiring
is reported at startup. Every check ID is listed in docs/checks.md.

:func:`register_all` is the one place they are registered, from ``TracingAppConfig.ready()``.
"""

from __future__ import annotations

from django.core.checks import Tags, register

from tracing_app.checks.celery import check_celery_installed
from tracing_app.checks.core import check_settings
from tracing_app.checks.idempotency import check_guarded_views, check_idempotency_settings
from tracing_app.checks.logs import check_logging
from tracing_app.checks.middleware import check_middleware
from tracing_app.checks.outbox import check_outbox_settings
from tracing_app.checks.rest import check_rest_framework
from tracing_app.checks.traces import check_trace_settings

__all__ = ["register_all"]


def register_all() -> None:
    """Register every tracing_app system check with Django (registering twice is harmless)."""
    for check in (
        check_settings,
        check_middleware,
        check_rest_framework,
        check_logging,
        check_celery_installed,
        check_idempotency_settings,
        check_trace_settings,
        check_outbox_settings,
    ):
        register(check, Tags.compatibility)
    register(check_guarded_views, Tags.urls)
