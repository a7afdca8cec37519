"""The TracerProvider built from the environment, with an export pipeline owned by each process.

Environment variables read (the standard ones; anything an exporter reads itself still applies):

- ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``: the resource (``Resource.create()``).
- ``OTEL_TRACES_EXPORTER``: comma-separated exporter names, default ``otlp``; ``none`` exports nothing;
  ``console`` prints; any other name is looked up among installed ``opentelemetry_traces_exporter``
  entry points.
- ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` / ``OTEL_EXPORTER_OTLP_PROTOCOL``: for ``otlp``, ``http/protobuf``
  (default; the exporter the ``otel`` extra installs) or ``grpc`` (needs
  ``opentelemetry-exporter-otlp-proto-grpc``).
- ``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, ``..._HEADERS``,
  ``..._TIMEOUT``: read by the OTLP exporter; ``OTEL_BSP_*``: read by the batch processor.

Sampling is :func:`tracing_app.otel.sampling.transaction_sampler` at ``TRACING_APP["SAMPLE_RATE"]``, not
``OTEL_TRACES_SAMPLER``: spans must be kept or dropped with the transaction's trace events.

Forks: an exporter's connections and a batch processor's thread do not survive ``fork()``. The
:class:`ExportPipeline` is therefore built lazily in the process that ends a span, rebuilt when the PID
changes, and started explicitly in each Celery pool child from ``worker_process_init``; nothing is
exported from the process that forked. The worker's main process never builds one.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from importlib.metadata import EntryPoint, entry_points

from django.core.exceptions import ImproperlyConfigured
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from tracing_app.otel.sampling import transaction_sampler

_ENTRY_POINT_GROUP = "opentelemetry_traces_exporter"
_OTLP_BY_PROTOCOL = {"http/protobuf": "otlp_proto_http", "grpc": "otlp_proto_grpc"}

ExporterFactory = Callable[[], SpanExporter]


def exporter_factories() -> list[ExporterFactory]:
    """The exporter classes ``OTEL_TRACES_EXPORTER`` names, checked now, instantiated per process later."""
    names = [name.strip() for name in os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")]
    factories: list[ExporterFactory] = []
    for name in names:
        if name in ("", "none"):
            continue
        if name == "otlp":
            protocol = (
                os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or "http/protobuf"
            ).strip()
            if protocol not in _OTLP_BY_PROTOCOL:
                raise ImproperlyConfigured(
                    f"OTEL_EXPORTER_OTLP_PROTOCOL {protocol!r} is not supported; "
                    f"use one of {', '.join(sorted(_OTLP_BY_PROTOCOL))}."
                )
            name = _OTLP_BY_PROTOCOL[protocol]
        factories.append(_load(name))
    return factories


def _load(name: str) -> ExporterFactory:
    found: Sequence[EntryPoint] = tuple(entry_points(group=_ENTRY_POINT_GROUP, name=name))
    if not found:
        installed = sorted({"none", "otlp", *(ep.name for ep in entry_points(group=_ENTRY_POINT_GROUP))})
        raise ImproperlyConfigured(
            f"OTEL_TRACES_EXPORTER names {name!r}, which is not installed; installed: {', '.join(installed)}."
        )
    return found[0].load()


class ExportPipeline(SpanProcessor):
    """Batch export for the spans of one process, built in that process.

    ``start()`` builds the exporters and batch processors for the calling process if it has none yet;
    ``on_end`` calls it too, so a fork nobody announced (gunicorn ``--preload``, multiprocessing) still
    exports from the child. Copies inherited from a parent are shut down unexported: the SDK already
    emptied their queues at the fork, and their connections belong to the parent.
    """

    def __init__(self, factories: Sequence[ExporterFactory]) -> None:
        self._factories = tuple(factories)
        self._processors: tuple[BatchSpanProcessor, ...] = ()
        self._pid = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            for inherited in self._processors:
                inherited.shutdown()
            self._processors = tuple(BatchSpanProcessor(factory()) for factory in self._factories)
            self._pid = os.getpid()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if self._pid != os.getpid():
            self.start()
        for processor in self._processors:
            processor.on_end(span)

    def shutdown(self) -> None:
        if self._pid != os.getpid():
            return
        for processor in self._processors:
            processor.shutdown()
        self._processors = ()
        self._pid = 0

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        if self._pid != os.getpid():
            return True
        return all(processor.force_flush(timeout_millis) for processor in self._processors)


def build_provider() -> tuple[TracerProvider, ExportPipeline]:
    """A TracerProvider from the environment and its (not yet started) export pipeline."""
    pipeline = ExportPipeline(exporter_factories())
    provider = TracerProvider(resource=Resource.create(), sampler=transaction_sampler())
    provider.add_span_processor(pipeline)
    return provider, pipeline
