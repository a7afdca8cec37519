"""The W3C Trace Context rules end to end: a service on tracing_app's OpenTelemetry wiring, served over real
HTTP (Django's threaded WSGI server, uvicorn for ASGI), receives each case's headers and calls back a local
server with ``requests`` or ``httpx``; the callback's headers, as received, must follow the rule.

Each test runs every case of tests/otel/w3c_cases.py against one server and client and reports all the
cases that went wrong at once.
"""

from __future__ import annotations

import re

import pytest

from tests.otel.conftest import Service
from tests.otel.w3c_cases import CONTINUED, TP, TRACEPARENT_CASES, TRACESTATE_CASES, Case, P, T

TRACEPARENT_OUT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def values(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [value for key, value in headers if key.lower() == name]


def traceparent_of(headers: list[tuple[str, str]]) -> tuple[str, str]:
    """(trace_id, parent_id) of the one well-formed traceparent a callback must carry."""
    (value,) = values(headers, "traceparent")
    match = TRACEPARENT_OUT.fullmatch(value)
    assert match is not None, value
    return match[1], match[2]


def problems_with(service: Service, case: Case) -> list[str]:
    _, (headers,) = service.call(case.headers)
    trace_id, parent_id = traceparent_of(headers)
    tracestate = ",".join(values(headers, "tracestate")) or None
    found = []
    if case.trace == CONTINUED and (trace_id != T or parent_id == P):
        found.append(f"trace not continued: {trace_id}-{parent_id}")
    if case.trace != CONTINUED and trace_id in (T, T[::-1], "0" * 32):
        found.append(f"trace not restarted: {trace_id}")
    if tracestate != case.tracestate:
        found.append(f"tracestate {tracestate!r}, expected {case.tracestate!r}")
    return [f"{case.name}: {problem}" for problem in found]


def test_every_traceparent_rule(w3c_service):
    problems = [problem for case in TRACEPARENT_CASES for problem in problems_with(w3c_service, case)]
    assert problems == []


def test_every_tracestate_rule(w3c_service):
    problems = [problem for case in TRACESTATE_CASES for problem in problems_with(w3c_service, case)]
    assert problems == []


@pytest.mark.parametrize(
    ("incoming", "continued"),
    [([("traceparent", TP)], True), ([], False), ([("traceparent", f"00-{'0' * 32}-{P}-01")], False)],
    ids=["valid traceparent", "no traceparent", "all-zero trace-id"],
)
def test_each_onward_call_gets_its_own_parent_id(w3c_service, incoming, continued):
    _, callbacks = w3c_service.call(incoming, count=3)
    ids = [traceparent_of(headers) for headers in callbacks]
    trace_ids = {trace_id for trace_id, _ in ids}
    assert len(trace_ids) == 1
    assert (trace_ids == {T}) is continued
    assert "0" * 32 not in trace_ids
    assert len({parent_id for _, parent_id in ids}) == 3
