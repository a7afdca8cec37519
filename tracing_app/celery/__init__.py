"""Celery: carry the transaction through task headers and into every line a worker logs.

Enable it once, where the Celery app is created::

    from celery import Celery
    from tracing_app.celery import install

    app = Celery("proj")
    app.config_from_object("django.conf:settings", namespace="CELERY")
    install(app)

The package, edge first:

- :mod:`~tracing_app.celery.headers`: the header protocol, the string headers each task message carries.
- :mod:`~tracing_app.celery.publish`: the publish side (:class:`TracedAMQP`, :func:`deferred_publishing`,
  :data:`publish_failed`).
- :mod:`~tracing_app.celery.worker`: the worker's main process (:class:`TracedRequest`, the consumer step,
  :data:`task_requeued`).
- :mod:`~tracing_app.celery.pipeline`: one receiver per Celery signal, making the hop's context current
  and calling the trace events, then OpenTelemetry, in a fixed order.
- :mod:`~tracing_app.celery.worker_logs`: one log format per stream, with the correlation and task IDs.
- :mod:`~tracing_app.celery.wiring`: :func:`install`.
"""

from tracing_app.celery.headers import (
    CAUSATION_HEADER,
    CORRELATION_HEADER,
    HEADER_NAMES,
    MAX_HEADER_BYTES,
    ORIGIN_HEADER,
    SAMPLED_HEADER,
    SEQUENCE_HEADER,
    read_headers,
    write_headers,
)
from tracing_app.celery.publish import TracedAMQP, deferred_publishing, publish_failed
from tracing_app.celery.wiring import install, is_installed
from tracing_app.celery.worker import TracedRequest, TracingStrategies, task_requeued
from tracing_app.celery.worker_logs import TaskFilter, instrument_handlers

__all__ = [
    "CAUSATION_HEADER",
    "CORRELATION_HEADER",
    "HEADER_NAMES",
    "MAX_HEADER_BYTES",
    "ORIGIN_HEADER",
    "SAMPLED_HEADER",
    "SEQUENCE_HEADER",
    "TaskFilter",
    "TracedAMQP",
    "TracedRequest",
    "TracingStrategies",
    "deferred_publishing",
    "install",
    "instrument_handlers",
    "is_installed",
    "publish_failed",
    "read_headers",
    "task_requeued",
    "write_headers",
]
