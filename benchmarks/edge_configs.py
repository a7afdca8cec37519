"""The Django configurations benchmark processes run: the HTTP edge rows compared side by side (a
baseline, tracing_app layer by layer, OpenTelemetry, the competitors), and the set-ups of the other
sections (idempotent views, the admin's trace pages).

Each benchmark process runs exactly one configuration (``BENCH_EDGE`` names it), so middleware stacks,
installed apps and signal receivers of different libraries never mix. This module is imported by the
benchmark settings, so it must not touch Django's settings at import time.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from benchmarks import otel_setup

VIEWS = ("plain", "drf")

ENVELOPE = {
    "DEFAULT_RENDERER_CLASSES": ["tracing_app.rest.EnvelopeJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "tracing_app.rest.exception_handler",
    "UNAUTHENTICATED_USER": None,
}


def _tracing(envelope: bool, **tracing_app: Any) -> dict[str, Any]:
    """Settings for one tracing_app layer; the layers are cumulative, each row adds one feature."""
    return {"TRACING_APP": tracing_app, **({"REST_FRAMEWORK": ENVELOPE} if envelope else {})}


ADMIN_TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]


def _quiet_structlog() -> None:
    """django-structlog logs two lines per request; drop them cheaply so only its middleware is measured."""
    import structlog

    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.ReturnLoggerFactory(),
        cache_logger_on_first_use=True,
    )


@dataclass(frozen=True)
class EdgeConfig:
    """One middleware stack with what it needs: apps, settings, and a hook run after ``django.setup()``."""

    key: str
    label: str
    middleware: tuple[str, ...] = ()
    apps: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)
    # Modules that must be importable; without them the configuration is reported as skipped.
    requires: tuple[str, ...] = ()
    # The response header the middleware must set; checked on a probe request before any timing.
    response_header: str | None = None
    # Which of VIEWS the HTTP sections time (the DRF envelope changes nothing for a plain view).
    views: tuple[str, ...] = VIEWS
    prepare: Callable[[], None] | None = None
    # Whether the configuration writes to the database (the benchmark database, see benchmarks.database).
    database: bool = False
    urlconf: str = "benchmarks.urls"

    def missing(self) -> list[str]:
        return [name for name in self.requires if importlib.util.find_spec(name) is None]


TRACING_MIDDLEWARE = "tracing_app.middleware.CorrelationIdMiddleware"

# The configurations compared side by side at the HTTP edge, in the order they are printed.
EDGE_CONFIGS: dict[str, EdgeConfig] = {
    config.key: config
    for config in (
        EdgeConfig("baseline", "no middleware (baseline)"),
        EdgeConfig(
            "tracing_app",
            "tracing_app, ID only",
            middleware=(TRACING_MIDDLEWARE,),
            apps=("tracing_app",),
            settings=_tracing(False, TRACE_ENABLED=False),
            response_header="X-Correlation-ID",
        ),
        EdgeConfig(
            "tracing_app_envelope",
            "tracing_app + DRF envelope",
            middleware=(TRACING_MIDDLEWARE,),
            apps=("tracing_app",),
            settings=_tracing(True, TRACE_ENABLED=False),
            response_header="X-Correlation-ID",
            views=("drf",),
        ),
        EdgeConfig(
            "tracing_app_unsampled",
            "tracing_app + envelope + event recording, sampled out",
            middleware=(TRACING_MIDDLEWARE,),
            apps=("tracing_app",),
            settings=_tracing(True, SAMPLE_RATE=0.0),
            requires=("tracing_app.traces.recorder",),
            response_header="X-Correlation-ID",
        ),
        EdgeConfig(
            "tracing_app_rate_5pct",
            "tracing_app + envelope + event recording, SAMPLE_RATE 0.05 (PostgreSQL)",
            middleware=(TRACING_MIDDLEWARE,),
            apps=("tracing_app",),
            settings=_tracing(True, SAMPLE_RATE=0.05),
            requires=("tracing_app.traces.recorder",),
            response_header="X-Correlation-ID",
            database=True,
        ),
        EdgeConfig(
            "tracing_app_sampled",
            "tracing_app + envelope + event recording, every request sampled (PostgreSQL)",
            middleware=(TRACING_MIDDLEWARE,),
            apps=("tracing_app",),
            settings=_tracing(True, SAMPLE_RATE=1.0),
            requires=("tracing_app.traces.recorder",),
            response_header="X-Correlation-ID",
            database=True,
        ),
        EdgeConfig(
            "otel_alone_unsampled",
            "OpenTelemetry Django instrumentation alone, sampled out",
            requires=("opentelemetry.sdk", "opentelemetry.instrumentation.django"),
            prepare=otel_setup.opentelemetry_alone_unsampled,
        ),
        EdgeConfig(
            "tracing_app_otel_unsampled",
            "tracing_app, ID only + OpenTelemetry, sampled out",
            middleware=(TRACING_MIDDLEWARE,),
            apps=("tracing_app",),
            settings=_tracing(False, TRACE_ENABLED=False, SAMPLE_RATE=0.0),
            requires=("tracing_app.otel.wiring", "opentelemetry.instrumentation.django"),
            response_header="X-Correlation-ID",
            prepare=otel_setup.tracing_app_otel,
        ),
        EdgeConfig(
            "tracing_app_otel_sampled",
            "tracing_app, ID only + OpenTelemetry, every request sampled (no exporter)",
            middleware=(TRACING_MIDDLEWARE,),
            apps=("tracing_app",),
            settings=_tracing(False, TRACE_ENABLED=False, SAMPLE_RATE=1.0),
            requires=("tracing_app.otel.wiring", "opentelemetry.instrumentation.django"),
            response_header="X-Correlation-ID",
            prepare=otel_setup.tracing_app_otel,
        ),
        EdgeConfig(
            "django_guid",
            "django-guid",
            middleware=("django_guid.middleware.guid_middleware",),
            apps=("django_guid",),
            settings={"DJANGO_GUID": {}},
            requires=("django_guid",),
            response_header="Correlation-ID",
        ),
        EdgeConfig(
            "log_request_id",
            "django-log-request-id",
            middleware=("log_request_id.middleware.RequestIDMiddleware",),
            settings={
                "LOG_REQUEST_ID_HEADER": "HTTP_X_REQUEST_ID",
                "GENERATE_REQUEST_ID_IF_NOT_IN_HEADER": True,
                "REQUEST_ID_RESPONSE_HEADER": "X-Request-ID",
            },
            requires=("log_request_id",),
            response_header="X-Request-ID",
        ),
        EdgeConfig(
            "django_cid",
            "django-cid",
            middleware=("cid.middleware.CidMiddleware",),
            apps=("cid",),
            settings={
                "CID_GENERATE": True,
                "CID_HEADER": "HTTP_X_CORRELATION_ID",
                "CID_RESPONSE_HEADER": "X-Correlation-ID",
            },
            requires=("cid",),
            response_header="X-Correlation-ID",
        ),
        EdgeConfig(
            "django_structlog",
            "django-structlog (request logs filtered out)",
            middleware=("django_structlog.middlewares.RequestMiddleware",),
            apps=("django_structlog",),
            requires=("django_structlog",),
            prepare=_quiet_structlog,
        ),
    )
}


# Configurations other sections serve their own views with.
SECTION_CONFIGS: dict[str, EdgeConfig] = {
    config.key: config
    for config in (
        EdgeConfig(
            "idempotency",
            "tracing_app, ID only, with idempotent views (PostgreSQL)",
            middleware=(TRACING_MIDDLEWARE,),
            apps=("tracing_app",),
            settings=_tracing(
                False, TRACE_ENABLED=False, IDEMPOTENCY_SCOPE="benchmarks.idempotency_views.client_scope"
            ),
            requires=("tracing_app.idempotency",),
            response_header="X-Correlation-ID",
            database=True,
            urlconf="benchmarks.idempotency_urls",
        ),
        EdgeConfig(
            "writer",
            "tracing_app's trace event writer (PostgreSQL)",
            apps=("tracing_app",),
            settings=_tracing(False, SAMPLE_RATE=1.0),
            requires=("tracing_app.traces.recorder",),
            database=True,
        ),
        EdgeConfig(
            "trace_store",
            "the Django admin with tracing_app's trace pages (PostgreSQL)",
            middleware=(
                TRACING_MIDDLEWARE,
                "django.contrib.sessions.middleware.SessionMiddleware",
                "django.contrib.auth.middleware.AuthenticationMiddleware",
                "django.contrib.messages.middleware.MessageMiddleware",
            ),
            apps=(
                "django.contrib.admin",
                "django.contrib.sessions",
                "django.contrib.messages",
                "tracing_app",
            ),
            # Viewing traces records nothing, so the store holds only the generated events.
            settings={**_tracing(False, TRACE_ENABLED=False), "TEMPLATES": ADMIN_TEMPLATES},
            requires=("tracing_app.traces.admin",),
            database=True,
            urlconf="benchmarks.admin_urls",
        ),
    )
}

CONFIGS = {**EDGE_CONFIGS, **SECTION_CONFIGS}


def current() -> EdgeConfig:
    """The configuration this process runs, from ``BENCH_EDGE`` (default: the baseline)."""
    return CONFIGS[os.environ.get("BENCH_EDGE", "baseline")]


def edge_environment(config: EdgeConfig) -> dict[str, str]:
    """Environment variables of a process running ``config``; prepares the database when it needs one."""
    environment = {"BENCH_EDGE": config.key}
    if config.database:
        from benchmarks import database

        environment["BENCH_DATABASE_URL"] = database.prepare()
    return environment
