"""Malformed incoming trace headers are ignored safely: the request is served and a new trace starts.

Cases follow the W3C Trace Context test suite (traceparent and tracestate) and the W3C Baggage limits.
Each goes through the real middleware stack: Django's test client (WSGI) and, for headers that only ASGI
can deliver twice, Django's ASGI handler.
"""

from __future__ import annotations

import logging

import pytest
from opentelemetry.trace import SpanKind

from tests.otel.conftest import asgi_get
from tracing_app import otel

pytestmark = pytest.mark.urls("tests.otel.urls")

T = "4bf92f3577b34da6a3ce929d0e0e4736"
P = "00f067aa0ba902b7"
VALID = f"00-{T}-{P}-01"

INVALID_TRACEPARENTS = {
    "version ff": f"ff-{T}-{P}-01",
    "version 00 with trailing data": f"00-{T}-{P}-01-what-the-future-will-be-like",
    "version 00 with a trailing dot": f"00-{T}-{P}-01.",
    "future version, no dash before extra data": f"cc-{T}-{P}-01.what-the-future-will-be-like",
    "version with illegal characters": f".0-{T}-{P}-01",
    "version too long": f"000-{T}-{P}-01",
    "version too short": f"0-{T}-{P}-01",
    "trace-id all zeros": f"00-{'0' * 32}-{P}-01",
    "trace-id illegal characters": f"00-.bf92f3577b34da6a3ce929d0e0e4736-{P}-01",
    "trace-id upper case": f"00-{T.upper()}-{P}-01",
    "trace-id too long": f"00-{T}00-{P}-01",
    "trace-id too short": f"00-{T[:-2]}-{P}-01",
    "parent-id all zeros": f"00-{T}-{'0' * 16}-01",
    "parent-id illegal characters": f"00-{T}-.0f067aa0ba902b7-01",
    "parent-id too long": f"00-{T}-{P}00-01",
    "parent-id too short": f"00-{T}-{P[:-2]}-01",
    "trace-flags illegal characters": f"00-{T}-{P}-.0",
    "trace-flags too long": f"00-{T}-{P}-001",
    "trace-flags too short": f"00-{T}-{P}-1",
    "non-ASCII digit": f"00-{T}-{P}-0\u0661",
    "oversized": f"cc-{T}-{P}-01-" + "a" * 600,
    "empty": "",
    "two headers joined by a WSGI server": f"{VALID},00-{T}-{'1' * 16}-01",
}

VALID_TRACEPARENTS = {
    "plain": VALID,
    "optional whitespace around": f" \t{VALID} \t",
    "future version": f"cc-{T}-{P}-01",
    "future version with extra data": f"cc-{T}-{P}-01-what-the-future-will-be-like",
    "unknown flags": f"00-{T}-{P}-ff",
}


def server_span(spans):
    (span,) = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    return span


def assert_new_trace(span) -> None:
    assert span.parent is None
    assert f"{span.context.trace_id:032x}" not in (T, "0" * 32)


@pytest.mark.parametrize("value", INVALID_TRACEPARENTS.values(), ids=INVALID_TRACEPARENTS.keys())
def test_invalid_traceparent_starts_a_new_trace(client, spans, value):
    response = client.get("/otel/echo/", HTTP_TRACEPARENT=value, HTTP_TRACESTATE="foo=1")
    assert response.status_code == 200
    span = server_span(spans)
    assert_new_trace(span)
    assert span.attributes[otel.ATTRIBUTE] == response["X-Correlation-ID"]
    assert span.context.trace_state.to_header() == ""


@pytest.mark.parametrize("value", VALID_TRACEPARENTS.values(), ids=VALID_TRACEPARENTS.keys())
def test_valid_traceparent_is_continued(client, spans, value):
    client.get("/otel/echo/", HTTP_TRACEPARENT=value)
    span = server_span(spans)
    assert f"{span.context.trace_id:032x}" == T
    assert f"{span.parent.span_id:016x}" == P


def test_traceparent_sent_twice_over_asgi_starts_a_new_trace(spans, log_records):
    response = asgi_get(
        "/otel/async-echo/", [("traceparent", VALID), ("traceparent", f"00-{T}-{'1' * 16}-01")]
    )
    assert response.status_code == 200
    assert_new_trace(server_span(spans))
    assert any("Ignored 2 traceparent headers" in r.getMessage() for r in log_records)


def test_traceparent_header_name_is_case_insensitive_over_asgi(spans):
    asgi_get("/otel/async-echo/", [("TraceParent", VALID)])
    assert f"{server_span(spans).context.trace_id:032x}" == T


INVALID_TRACESTATES = {
    "key with upper case": "FOO=1",
    "key starting with '@'": "@foo=1,bar=2",
    "value with a comma inside": "foo=a,b",
    "value with a control character": "foo=a\x01",
    "empty value": "foo=,bar=3",
    "33 members": ",".join(f"k{i}=v" for i in range(33)),
    "key of 257 characters": "a" * 257 + "=1",
    "value with '='": "foo=a=b",
}


@pytest.mark.parametrize("value", INVALID_TRACESTATES.values(), ids=INVALID_TRACESTATES.keys())
def test_invalid_tracestate_is_dropped_and_the_trace_kept(client, spans, value):
    client.get("/otel/echo/", HTTP_TRACEPARENT=VALID, HTTP_TRACESTATE=value)
    span = server_span(spans)
    assert f"{span.context.trace_id:032x}" == T
    assert span.context.trace_state.to_header() == ""


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("foo=1,bar=2", "foo=1,bar=2"),
        (" foo=1 , bar=2 ", "foo=1,bar=2"),
        (",".join(f"k{i}=v" for i in range(32)), ",".join(f"k{i}=v" for i in range(32))),
        ("t@sys=1", "t@sys=1"),
        ("foo@=1,bar=2", "foo@=1,bar=2"),
        ("foo=1,foo=2", "foo=1"),
    ],
    ids=[
        "two members",
        "optional whitespace",
        "32 members",
        "vendor key",
        "key ending in '@'",
        "repeated key",
    ],
)
def test_valid_tracestate_is_kept(client, spans, value, expected):
    client.get("/otel/echo/", HTTP_TRACEPARENT=VALID, HTTP_TRACESTATE=value)
    assert server_span(spans).context.trace_state.to_header() == expected


INVALID_BAGGAGE = {
    "member without '='": "tenant",
    "key with a space": "ten ant=acme",
    "non-ASCII value": "tenant=\u00e9",
    "control character": "tenant=a\x7f",
    "oversized header": "tenant=" + "x" * 9000,
}


@pytest.mark.parametrize("value", INVALID_BAGGAGE.values(), ids=INVALID_BAGGAGE.keys())
def test_invalid_baggage_is_ignored_and_the_trace_kept(client, spans, value):
    response = client.get("/otel/echo/", HTTP_TRACEPARENT=VALID, HTTP_BAGGAGE=value)
    assert response.status_code == 200
    seen = response.json()
    assert seen["all_baggage"] == {otel.BAGGAGE_KEY: response["X-Correlation-ID"]}
    assert f"{server_span(spans).context.trace_id:032x}" == T


def test_baggage_over_the_member_limit_keeps_180_members_ours_first(client, spans):
    value = ",".join(f"k{i}=1" for i in range(200))
    response = client.get("/otel/echo/", HTTP_BAGGAGE=value)
    members = response.json()["all_baggage"]
    assert len(members) == 180
    assert next(iter(members.items())) == (otel.BAGGAGE_KEY, response["X-Correlation-ID"])
    assert list(members)[1:] == [f"k{i}" for i in range(179)]


def test_oversized_baggage_is_not_logged_in_full(client, spans, caplog):
    secret = "x" * 9000
    with caplog.at_level(logging.DEBUG):
        client.get("/otel/echo/", HTTP_BAGGAGE=f"tenant={secret}")
    assert "Ignored a baggage header of 9007 bytes" in caplog.text
    assert secret not in caplog.text
