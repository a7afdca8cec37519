"""The provider built from OTEL_* variables: exporter choice, clear errors, one pipeline per process."""

from __future__ import annotations

import os

import pytest
from django.core.exceptions import ImproperlyConfigured
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter, SpanExportResult

from tracing_app import otel
from tracing_app.otel.export import ExportPipeline, exporter_factories


@pytest.fixture
def env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, [OTLPSpanExporter]),
        ("otlp", [OTLPSpanExporter]),
        ("none", []),
        ("console, otlp", [ConsoleSpanExporter, OTLPSpanExporter]),
    ],
)
def test_exporters_named_by_the_environment(env, value, expected):
    if value is not None:
        env.setenv("OTEL_TRACES_EXPORTER", value)
    assert exporter_factories() == expected


def test_otlp_over_http_protobuf_is_the_default_protocol(env):
    env.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    assert exporter_factories() == [OTLPSpanExporter]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("OTEL_TRACES_EXPORTER", "zipkin", "OTEL_TRACES_EXPORTER names 'zipkin', which is not installed"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "names 'otlp_proto_grpc', which is not installed"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json", "'http/json' is not supported"),
    ],
)
def test_unusable_exporter_configuration_is_a_clear_error(env, variable, value, message):
    env.setenv(variable, value)
    with pytest.raises(ImproperlyConfigured, match=message):
        exporter_factories()


def test_otel_sdk_disabled_keeps_everything_off(env):
    env.setenv("OTEL_SDK_DISABLED", "true")
    assert otel.enable() is False
    assert not otel.is_enabled()


class PipeExporter(SpanExporter):
    """Writes "<pid that built me> <pid that exported> <span names>" lines to a pipe."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.built_in = os.getpid()

    def export(self, spans) -> SpanExportResult:
        names = ",".join(span.name for span in spans)
        os.write(self.fd, f"{self.built_in} {os.getpid()} {names}\n".encode())
        return SpanExportResult.SUCCESS


# Python 3.12+ warns of any fork from a threaded process; the child here does its part and exits at once.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_exports_through_a_pipeline_of_its_own():
    read_end, write_end = os.pipe()
    pipeline = ExportPipeline([lambda: PipeExporter(write_end)])
    provider = TracerProvider()
    provider.add_span_processor(pipeline)
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("in parent"):
        pass
    pid = os.fork()
    if pid == 0:  # the child: end one span, flush as a Celery pool child does on shutdown, leave
        try:
            with tracer.start_as_current_span("in child"):
                pass
            pipeline.force_flush()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    pipeline.force_flush()
    os.close(write_end)
    with os.fdopen(read_end) as lines:
        exported = sorted(line.rstrip("\n").split(" ", 2) for line in lines)
    parent = str(os.getpid())
    assert exported == sorted([[parent, parent, "in parent"], [str(pid), str(pid), "in child"]])
    pipeline.shutdown()
