"""Incoming baggage at and over the W3C limits (180 members, 8192 bytes) never pushes the correlation ID out
of the baggage a request sends onward: incoming members give way, from the end.

On the wire: the W3C test service (tests/otel/urls.py) over real HTTP, under WSGI and ASGI, calls a local
server, whose received headers are checked.
"""

from __future__ import annotations

import pytest
from opentelemetry import baggage

from tracing_app import otel
from tracing_app.context import TraceContext
from tracing_app.otel.carried_baggage import MAX_BYTES, MAX_MEMBERS, with_correlation_id

pytestmark = pytest.mark.urls("tests.otel.urls")


def members(count: int) -> list[str]:
    return [f"m{i:03d}=v" for i in range(count)]


def members_of_bytes(total: int) -> list[str]:
    """Members of 80 bytes (the last one shorter or longer) joined into exactly ``total`` bytes."""
    result: list[str] = []
    used = -1
    while used + 1 + 80 <= total:
        result.append(f"k{len(result):04d}=" + "v" * 74)
        used += 81
    result[-1] += "v" * (total - used)
    return result


def growing_members(total: int) -> list[str]:
    """Members of ``total`` bytes that grow when written again: the SDK percent-encodes each '/'."""
    return [member.replace("v", "/") for member in members_of_bytes(total)]


CASES = {
    "179 members": members(179),
    "180 members": members(180),
    "181 members": members(181),
    "200 members": members(200),
    "8150 bytes": members_of_bytes(8150),
    "8192 bytes": members_of_bytes(8192),
    "8193 bytes": members_of_bytes(8193),
    "20000 bytes": members_of_bytes(20000),
    "8000 bytes growing when re-encoded": growing_members(8000),
}


def test_the_byte_cases_are_the_sizes_they_say():
    for name, incoming in CASES.items():
        if "bytes" in name:
            assert len(",".join(incoming).encode()) == int(name.split()[0])
    assert "/" in CASES["8000 bytes growing when re-encoded"][0]


@pytest.mark.parametrize("incoming", CASES.values(), ids=CASES.keys())
def test_the_correlation_id_goes_out_within_the_limits(w3c_service, incoming):
    correlation_id, (headers,) = w3c_service.call([("baggage", ",".join(incoming))])
    (sent,) = [value for name, value in headers if name.lower() == "baggage"]
    ours = f"{otel.BAGGAGE_KEY}={correlation_id}"
    out = sent.split(",")
    assert out.count(ours) == 1
    assert len(out) <= MAX_MEMBERS
    assert len(sent.encode()) <= MAX_BYTES
    # What is kept of the incoming members is their beginning: they give way from the end.
    kept = [member.split("=")[0] for member in out if member != ours]
    assert kept == [member.split("=")[0] for member in incoming[: len(kept)]]


@pytest.mark.parametrize("name", ["179 members", "8150 bytes"])
def test_baggage_that_leaves_room_goes_on_whole(w3c_service, name):
    _, (headers,) = w3c_service.call([("baggage", ",".join(CASES[name]))])
    (sent,) = [value for key, value in headers if key.lower() == "baggage"]
    assert sent.split(",")[:-1] == CASES[name]  # the correlation ID simply follows them


def test_a_correlation_id_already_carried_is_left_as_it_is(spans):
    ctx = TraceContext("01JCALLERCHOSEITSOWNIDXXXX")
    context = baggage.set_baggage(otel.BAGGAGE_KEY, ctx.correlation_id, baggage.set_baggage("tenant", "acme"))
    assert with_correlation_id(ctx, context) is context


def test_an_incoming_correlation_id_entry_is_replaced_even_at_the_limit(spans):
    ctx = TraceContext("01JCALLERCHOSEITSOWNIDXXXX")
    context = baggage.set_baggage(otel.BAGGAGE_KEY, "someone-else")
    for member in members(179):
        context = baggage.set_baggage(member.split("=")[0], "v", context)
    carried = baggage.get_all(with_correlation_id(ctx, context))
    assert len(carried) == 180
    assert carried[otel.BAGGAGE_KEY] == ctx.correlation_id


def test_the_members_given_way_are_counted_in_the_transaction(client, spans, log_records):
    response = client.get("/otel/echo/", HTTP_BAGGAGE=",".join(CASES["8192 bytes"]))
    (record,) = [r for r in log_records if r.getMessage().startswith("Dropped")]
    assert record.getMessage() == (
        f"Dropped 1 of 101 incoming baggage members to keep {otel.BAGGAGE_KEY} within the W3C limits"
    )
    assert record.correlation_id == response["X-Correlation-ID"]
