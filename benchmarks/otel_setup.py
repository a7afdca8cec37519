"""OpenTelemetry set-ups for the HTTP edge configurations (``prepare`` hooks: after ``django.setup()``,
before the handler loads its middleware, which Django instrumentation edits).

Spans are built but exported nowhere (``OTEL_TRACES_EXPORTER=none``): the figures are the cost of the
instrumentation and of tracing_app's linkage in the request path, not of a collector.
"""

from __future__ import annotations

import os


def opentelemetry_alone_unsampled() -> None:
    """OpenTelemetry's Django instrumentation by itself, every trace sampled out: the reference row."""
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    DjangoInstrumentor().instrument(tracer_provider=TracerProvider(sampler=ALWAYS_OFF))


def tracing_app_otel() -> None:
    """tracing_app's OpenTelemetry wiring, sampled at the configuration's SAMPLE_RATE."""
    os.environ["OTEL_TRACES_EXPORTER"] = "none"
    from tracing_app import otel

    if not otel.enable():
        raise RuntimeError("OpenTelemetry could not be enabled")
