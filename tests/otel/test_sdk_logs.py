"""OpenTelemetry's own log lines about hostile header values: escaped, bounded, and logged inside the
request's transaction (its correlation ID, the server span's IDs), under WSGI and ASGI."""

from __future__ import annotations

import json
import logging

import pytest
from django.test import Client
from opentelemetry.trace import SpanKind
from opentelemetry.trace.span import TraceState

from tests.otel.conftest import asgi_get
from tracing_app import otel
from tracing_app.logs import JsonFormatter
from tracing_app.otel import sdk_logs

pytestmark = pytest.mark.urls("tests.otel.urls")

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
HOSTILE = "\x1b[31m\r\nFORGED correlation_id=0000 " + "x" * 600
BAGGAGE = f"tenant=acme,bad key={HOSTILE}"
TRACESTATE = f"foo=1,bar={HOSTILE}"
STANDARD_KEYS = ("timestamp", "level", "logger", "message", "correlation_id", "causation_id", "trace_id")
STANDARD_KEYS += ("span_id", "process", "thread")


def get_wsgi(headers: dict[str, str]) -> tuple[str, int]:
    response = Client().get("/otel/echo/", **{f"HTTP_{k.upper()}": v for k, v in headers.items()})
    return response["X-Correlation-ID"], response.status_code


def get_asgi(headers: dict[str, str]) -> tuple[str, int]:
    response = asgi_get("/otel/async-echo/", list(headers.items()))
    return response.headers["X-Correlation-ID"], response.status_code


@pytest.mark.parametrize("get", [get_wsgi, get_asgi], ids=["wsgi", "asgi"])
@pytest.mark.parametrize(
    ("header", "value", "logger_name"),
    [
        ("baggage", BAGGAGE, "opentelemetry.baggage.propagation"),
        ("tracestate", TRACESTATE, sdk_logs.OWN_LOGGER),
    ],
    ids=["baggage", "tracestate"],
)
def test_a_hostile_value_is_logged_escaped_bounded_and_in_the_transaction(
    spans, log_records, get, header, value, logger_name
):
    correlation_id, status = get({"traceparent": TRACEPARENT, header: value})
    assert status == 200
    (record,) = [r for r in log_records if r.name == logger_name]
    message = record.getMessage()
    assert message.isprintable()
    assert "\x1b" not in message and "\n" not in message
    assert "x" * 100 not in message
    assert len(message) < 200
    assert "(6" in message  # the escaped value says how long it was
    assert record.correlation_id == correlation_id
    line = json.loads(JsonFormatter().format(record))
    assert set(line) == {*STANDARD_KEYS}, "no bookkeeping attribute leaks into the line"
    (server,) = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert record.trace_id == f"{server.context.trace_id:032x}"
    assert record.span_id == f"{server.context.span_id:016x}"


def test_a_line_held_for_the_transaction_is_logged_once(client, spans, log_records):
    client.get("/otel/echo/", HTTP_BAGGAGE=BAGGAGE)
    client.get("/otel/echo/")
    assert len([r for r in log_records if r.name == "opentelemetry.baggage.propagation"]) == 1


def test_sdk_lines_outside_extraction_are_escaped_too(spans, log_records):
    TraceState().add("BAD\n" * 100, "value")
    (record,) = [r for r in log_records if r.name == "opentelemetry.trace.span"]
    assert "\n" not in record.getMessage()
    assert len(record.getMessage()) < 200
    assert record.correlation_id == "-"


def test_disable_takes_the_filters_off(spans):
    target = logging.getLogger("opentelemetry.baggage.propagation")
    assert any(isinstance(f, sdk_logs.SdkLogFilter) for f in target.filters)
    otel.disable()
    assert not any(isinstance(f, sdk_logs.SdkLogFilter) for f in target.filters)
