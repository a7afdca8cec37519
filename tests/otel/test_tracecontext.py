"""The W3C Trace Context parser on its own: every rule of tests/otel/w3c_cases.py, plus TraceState edits."""

from __future__ import annotations

import pytest
from opentelemetry import trace

from tests.otel.w3c_cases import CONTINUED, TRACEPARENT_CASES, TRACESTATE_CASES, Case, P, T
from tracing_app.otel.tracecontext import (
    MAX_TRACESTATE_LENGTH,
    W3CTraceContextPropagator,
    W3CTraceState,
    parse_traceparent,
)


class HeaderGetter:
    """Reads a list of (name, value) headers as a server does: names in any case, every value in order."""

    def get(self, carrier: list[tuple[str, str]], key: str) -> list[str] | None:
        values = [value for name, value in carrier if name.lower() == key]
        return values or None

    def keys(self, carrier: list[tuple[str, str]]) -> list[str]:
        return [name for name, _ in carrier]


@pytest.mark.parametrize("case", TRACEPARENT_CASES + TRACESTATE_CASES, ids=lambda c: c.name)
def test_extract(case: Case) -> None:
    context = W3CTraceContextPropagator().extract(list(case.headers), getter=HeaderGetter())
    span_context = trace.get_current_span(context).get_span_context()
    if case.trace == CONTINUED:
        assert (f"{span_context.trace_id:032x}", f"{span_context.span_id:016x}") == (T, P)
        assert span_context.is_remote
        assert span_context.trace_state.to_header() == (case.tracestate or "")
    else:
        assert not span_context.is_valid


def test_only_the_sampled_and_random_flags_are_carried_on() -> None:
    assert parse_traceparent(f"00-{T}-{P}-ff").trace_flags == 0x03
    assert parse_traceparent(f"cc-{T}-{P}-05-x").trace_flags == 0x01


def test_a_tracestate_value_sent_as_a_string_is_read() -> None:
    carrier = {"traceparent": f"00-{T}-{P}-01", "tracestate": "foo=1,bar=2"}
    context = W3CTraceContextPropagator().extract(carrier, getter=_StringGetter())
    assert trace.get_current_span(context).get_span_context().trace_state.to_header() == "foo=1,bar=2"


class _StringGetter:
    def get(self, carrier: dict[str, str], key: str) -> str | None:
        return carrier.get(key)

    def keys(self, carrier: dict[str, str]) -> list[str]:
        return list(carrier)


def test_update_moves_the_key_to_the_front_and_keeps_the_grammar() -> None:
    state = W3CTraceState.from_header(["foo@=1,bar=2"])
    updated = state.update("bar", "3")
    assert isinstance(updated, W3CTraceState)
    assert updated.to_header() == "bar=3,foo@=1"
    assert updated.add("new@tenant", "x").to_header() == "new@tenant=x,bar=3,foo@=1"
    assert updated.add("bar", "4") is updated
    assert updated.update("BAD", "x") is updated
    assert updated.delete("foo@").to_header() == "bar=3"


def test_adding_to_a_full_list_drops_the_last_entry() -> None:
    full = W3CTraceState((f"k{i}", "v") for i in range(32))
    added = full.add("ours", "1")
    assert len(added) == 32
    assert list(added)[:2] == ["ours", "k0"]
    assert "k31" not in added


def test_an_update_that_outgrows_512_characters_drops_entries_from_the_end() -> None:
    state = W3CTraceState((f"k{i}", "v" * 100) for i in range(4))
    assert len(state.to_header()) <= MAX_TRACESTATE_LENGTH
    grown = state.update("big", "w" * 120)
    assert len(grown.to_header()) <= MAX_TRACESTATE_LENGTH
    assert list(grown) == ["big", "k0", "k1", "k2"]


def test_a_huge_tracestate_is_dropped_unread() -> None:
    assert len(W3CTraceState.from_header(["a=1," * 20_000])) == 0
