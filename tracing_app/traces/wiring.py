"""Connects the trace event receivers; called once from ``TracingAppConfig.ready()``."""

from __future__ import annotations

from importlib.util import find_spec

from django.core.signals import got_request_exception

from tracing_app.traces.http_events import on_got_request_exception


def connect() -> None:
    got_request_exception.connect(
        on_got_request_exception, dispatch_uid="tracing_app.traces.on_got_request_exception"
    )
    if find_spec("celery") is not None:
        from tracing_app.traces import celery_events

        celery_events.wire()
