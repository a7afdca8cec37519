"""The HTTP edge with OpenTelemetry on: server span, correlation attribute, baggage, logs (WSGI and ASGI)."""

from __future__ import annotations

import pytest
from django.conf import settings
from opentelemetry.trace import SpanKind

from tests.otel.conftest import asgi_get
from tracing_app import logs, otel

pytestmark = pytest.mark.urls("tests.otel.urls")

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


def server_span(spans):
    found = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert len(found) == 1, [s.name for s in spans.get_finished_spans()]
    return found[0]


def test_enable_puts_opentelemetry_outside_the_correlation_middleware(spans):
    middleware = list(settings.MIDDLEWARE)
    assert middleware[0].startswith("opentelemetry.instrumentation.django")
    assert middleware[1] == "tracing_app.middleware.CorrelationIdMiddleware"
    assert otel.enable() is True  # idempotent


def test_disable_removes_the_wiring(spans):
    otel.disable()
    assert not any(m.startswith("opentelemetry") for m in settings.MIDDLEWARE)
    assert otel.edge is None
    assert logs._span_source is None


def test_server_span_carries_the_correlation_id_and_the_view_sees_it_as_baggage(client, spans):
    response = client.get("/otel/echo/")
    seen = response.json()
    correlation_id = response["X-Correlation-ID"]
    span = server_span(spans)
    assert span.attributes[otel.ATTRIBUTE] == correlation_id == seen["correlation_id"]
    # The instrumentation's own attributes survive the project's sampler.
    assert span.attributes["http.method"] == "GET"
    assert seen["baggage"] == correlation_id
    trace_id = f"{span.context.trace_id:032x}"
    assert seen["traceparent"].split("-")[1] == trace_id
    assert seen["sampled"] is True


def test_incoming_traceparent_is_honoured(client, spans):
    response = client.get("/otel/echo/", HTTP_TRACEPARENT=f"00-{TRACE_ID}-{PARENT_ID}-01")
    span = server_span(spans)
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert f"{span.parent.span_id:016x}" == PARENT_ID
    assert span.parent.is_remote
    assert response.json()["traceparent"].startswith(f"00-{TRACE_ID}-")


def test_incoming_baggage_cannot_replace_the_correlation_id(client, spans):
    response = client.get("/otel/echo/", HTTP_BAGGAGE="correlation_id=forged,tenant=acme")
    seen = response.json()
    assert seen["baggage"] == response["X-Correlation-ID"]
    assert seen["all_baggage"]["tenant"] == "acme"


def test_log_records_get_the_span_ids(client, spans, log_records):
    client.get("/otel/echo/", HTTP_TRACEPARENT=f"00-{TRACE_ID}-{PARENT_ID}-01")
    span = server_span(spans)
    record = next(r for r in log_records if r.getMessage() == "otel echo view")
    assert record.trace_id == TRACE_ID
    assert record.span_id == f"{span.context.span_id:016x}"
    assert record.correlation_id == span.attributes[otel.ATTRIBUTE]


def test_log_records_outside_a_span_get_the_empty_value_never_zeros(spans, log_records):
    import logging

    logging.getLogger("tests.otel").info("outside")
    assert (log_records[-1].trace_id, log_records[-1].span_id) == ("-", "-")


def test_baggage_is_detached_after_the_response(client, spans):
    from opentelemetry import baggage

    client.get("/otel/echo/")
    assert baggage.get_baggage(otel.BAGGAGE_KEY) is None


def test_asgi_request_gets_a_server_span_linked_to_the_correlation_id(spans):
    response = asgi_get("/otel/async-echo/", [("traceparent", f"00-{TRACE_ID}-{PARENT_ID}-01")])
    assert response.status_code == 200
    seen = response.json()
    span = server_span(spans)
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert span.attributes[otel.ATTRIBUTE] == response.headers["X-Correlation-ID"] == seen["correlation_id"]
    assert seen["baggage"] == seen["correlation_id"]
    assert seen["traceparent"].split("-")[1] == TRACE_ID


def test_current_traceparent_outside_a_trace_is_none(spans):
    assert otel.current_traceparent() is None


def test_continue_trace_joins_a_carried_traceparent_and_restarts_on_a_bad_one(spans):
    with otel.continue_trace(f"00-{TRACE_ID}-{PARENT_ID}-01", "consume order") as span:
        assert otel.current_traceparent().split("-")[1] == TRACE_ID
    assert f"{span.parent.span_id:016x}" == PARENT_ID
    with otel.continue_trace(f"00-{'0' * 32}-{PARENT_ID}-01", "consume order") as span:
        assert otel.current_traceparent().split("-")[1] != "0" * 32
    assert span.parent is None


def test_a_message_body_carries_the_trace_and_its_handler_continues_it(spans):
    from opentelemetry import baggage

    from tracing_app import bind, messaging

    with bind() as ctx, otel.tracer("test").start_as_current_span("publish") as publisher:
        body = messaging.message_body({"order": 1})
        assert body["metadata"]["trace_parent"] == otel.current_traceparent()
    assert body["metadata"]["trace_parent"].split("-")[2] == f"{publisher.get_span_context().span_id:016x}"
    seen = {}

    @messaging.handler
    def on_order(payload, message):
        seen["traceparent"] = otel.current_traceparent()
        seen["baggage"] = baggage.get_baggage(otel.BAGGAGE_KEY)

    on_order(body, None)
    consumer = next(s for s in spans.get_finished_spans() if s.kind == SpanKind.CONSUMER)
    assert consumer.parent.span_id == publisher.get_span_context().span_id
    assert consumer.context.trace_id == publisher.get_span_context().trace_id
    assert consumer.attributes[otel.ATTRIBUTE] == ctx.correlation_id
    assert seen["traceparent"].split("-")[2] == f"{consumer.context.span_id:016x}"
    assert seen["baggage"] == ctx.correlation_id
