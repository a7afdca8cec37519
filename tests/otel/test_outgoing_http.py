"""Outgoing HTTP from inside a transaction carries traceparent, baggage and X-Correlation-ID.

Every call goes to a real HTTP server on 127.0.0.1 that records the headers it received.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
import requests
from opentelemetry import baggage
from opentelemetry.trace import SpanKind

from tests.otel.conftest import asgi_get, server_url
from tracing_app import bind, otel, outgoing_http

pytestmark = pytest.mark.urls("tests.otel.urls")


def trace_id_of(headers: dict) -> str:
    return headers["traceparent"].split("-")[1]


def assert_carries(headers: dict, correlation_id: str, trace_id: str) -> None:
    assert headers["x-correlation-id"] == correlation_id
    assert trace_id_of(headers) == trace_id
    assert f"{otel.BAGGAGE_KEY}={correlation_id}" in headers["baggage"].split(",")


def test_requests_and_httpx_calls_from_a_view_carry_the_transaction(client, spans, header_server):
    response = client.get("/otel/call/", {"url": server_url(header_server)})
    correlation_id = response["X-Correlation-ID"]
    (server_span,) = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    trace_id = f"{server_span.context.trace_id:032x}"
    assert len(header_server.seen) == 2  # requests, then httpx
    for headers in header_server.seen:
        assert_carries(headers, correlation_id, trace_id)
    clients = [s for s in spans.get_finished_spans() if s.kind == SpanKind.CLIENT]
    assert len(clients) == 2
    assert all(s.attributes[otel.ATTRIBUTE] == correlation_id for s in clients)
    # Each call's traceparent names its own client span as the parent.
    assert {h["traceparent"].split("-")[2] for h in header_server.seen} == {
        f"{s.context.span_id:016x}" for s in clients
    }


def test_async_httpx_call_from_an_asgi_view_carries_the_transaction(spans, header_server):
    response = asgi_get(f"/otel/async-call/?url={server_url(header_server)}")
    (server_span,) = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    (headers,) = header_server.seen
    assert_carries(headers, response.headers["X-Correlation-ID"], f"{server_span.context.trace_id:032x}")


def test_unsampled_transactions_still_propagate(client, spans, header_server, settings):
    settings.TRACING_APP = {"SAMPLE_RATE": 0.0}
    response = client.get("/otel/call/", {"url": server_url(header_server)})
    for headers in header_server.seen:
        assert headers["x-correlation-id"] == response["X-Correlation-ID"]
        assert int(headers["traceparent"].rsplit("-", 1)[1], 16) & 1 == 0
    assert spans.get_finished_spans() == ()


def test_a_header_the_caller_set_is_kept(spans, header_server):
    with bind("01JCALLERCHOSEITSOWNIDXXXX"):
        requests.get(server_url(header_server), headers={"X-Correlation-ID": "explicit"}, timeout=5)
    assert header_server.seen[0]["x-correlation-id"] == "explicit"


def test_calls_outside_a_transaction_carry_no_correlation_header(spans, header_server):
    requests.get(server_url(header_server), timeout=5)
    assert "x-correlation-id" not in header_server.seen[0]


def test_without_opentelemetry_the_explicit_hooks_add_the_correlation_header(header_server):
    assert not otel.is_enabled()
    url = server_url(header_server)
    with bind() as ctx:
        session = requests.Session()
        session.mount("http://", outgoing_http.PropagatingAdapter())
        session.get(url, timeout=5)
        with httpx.Client(event_hooks={"request": [outgoing_http.httpx_hook]}) as client:
            client.get(url)

        async def call() -> None:
            async with httpx.AsyncClient(event_hooks={"request": [outgoing_http.httpx_async_hook]}) as client:
                await client.get(url)

        asyncio.run(call())
    assert [h["x-correlation-id"] for h in header_server.seen] == [ctx.correlation_id] * 3
    assert all("traceparent" not in h for h in header_server.seen)


def test_outgoing_headers_for_other_clients(spans):
    assert outgoing_http.outgoing_headers() == {}
    tracer = otel.tracer("test")
    with bind() as ctx, tracer.start_as_current_span("job") as span:
        headers = outgoing_http.outgoing_headers()
    assert headers["X-Correlation-ID"] == ctx.correlation_id
    assert trace_id_of(headers) == f"{span.get_span_context().trace_id:032x}"


def test_detached_trace_starts_a_new_trace_linked_to_the_caller(spans, header_server):
    with bind() as ctx, otel.continue_trace(None, "checkout") as caller:
        caller_traceparent = otel.current_traceparent()
        assert baggage.get_baggage(otel.BAGGAGE_KEY) == ctx.correlation_id
        with outgoing_http.detached_trace("payment provider") as root:
            requests.get(server_url(header_server), timeout=5)
    (headers,) = header_server.seen
    caller_trace = f"{caller.get_span_context().trace_id:032x}"
    assert trace_id_of(headers) != caller_trace
    assert trace_id_of(headers) == f"{root.get_span_context().trace_id:032x}"
    assert "x-correlation-id" not in headers
    assert "baggage" not in headers
    assert root.parent is None
    (link,) = root.links
    assert link.context.span_id == caller.get_span_context().span_id
    assert root.attributes[outgoing_http.CALLER_ATTRIBUTE] == caller_traceparent
    assert root.attributes[otel.ATTRIBUTE] == ctx.correlation_id


def test_detached_trace_without_opentelemetry_withholds_the_correlation_header(header_server):
    session = requests.Session()
    session.mount("http://", outgoing_http.PropagatingAdapter())
    with bind(), outgoing_http.detached_trace("payment provider") as root:
        session.get(server_url(header_server), timeout=5)
    assert root is None
    assert "x-correlation-id" not in header_server.seen[0]


def test_http_instrumentation_can_be_left_off(header_server, settings):
    from opentelemetry.sdk.trace import TracerProvider

    settings.TRACING_APP = {"OTEL_INSTRUMENT_HTTP": False}
    assert otel.enable(tracer_provider=TracerProvider())
    try:
        with bind(), otel.continue_trace(None, "job"):
            requests.get(server_url(header_server), timeout=5)
    finally:
        otel.disable()
    assert "traceparent" not in header_server.seen[0]
    assert "x-correlation-id" not in header_server.seen[0]
