"""W3C Trace Context (Level 2): ``traceparent`` and ``tracestate`` read and written to the current grammar.

The OpenTelemetry API's parser predates the current ``tracestate`` key grammar: it rejects keys such as
``foo@`` or ``tenant@`` followed by a 15-character system, and empties the whole ``tracestate`` on a
duplicated key. Here:

``traceparent``
    Optional whitespace around the value is ignored. Version ``00`` is exactly
    ``00-<32 hex>-<16 hex>-<2 hex>``; a higher version (never ``ff``) is read by its first four fields,
    which must be followed by the end of the value or a dash. Lower-case hex only, no all-zero trace or
    parent ID, at most 512 characters, and one header: a value sent twice starts a new trace. Flags other
    than ``sampled`` and ``random`` are not carried on (the spec reserves them).

``tracestate``
    Read only with a valid ``traceparent``. Several headers are joined with commas, empty members and
    whitespace around members are ignored. A key is a lower-case letter or digit followed by up to 255 of
    ``a-z 0-9 _ - * / @``; a value is up to 256 printable ASCII characters without ``,`` or ``=``, not
    ending in a space. One invalid member or more than 32 members drop the whole ``tracestate`` (the trace
    is kept). A repeated key keeps its first, left-most entry, the most recent position. Longer than
    :data:`MAX_TRACESTATE_LENGTH` characters, whole entries go: those over 128 characters first, then from
    the end.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import CarrierT, Getter, default_getter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.trace.span import TraceState

from tracing_app.ids import safe_repr
from tracing_app.otel.sdk_logs import OWN_LOGGER

logger = logging.getLogger(OWN_LOGGER)

#: What this service propagates of a ``tracestate``: the 512 characters every vendor should carry.
MAX_TRACESTATE_LENGTH = 512
MAX_TRACESTATE_MEMBERS = 32
# An entry this long is the first to go when a tracestate must be shortened.
_LONG_ENTRY = 128
# Longer than any 32 valid members with generous whitespace: not worth reading.
_MAX_TRACESTATE_INPUT = 2 * MAX_TRACESTATE_MEMBERS * (256 + 1 + 256 + 1)
_MAX_TRACEPARENT_LENGTH = 512
_KNOWN_FLAGS = trace.TraceFlags.SAMPLED | trace.TraceFlags.RANDOM_TRACE_ID

_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?", re.DOTALL)
_MEMBER = re.compile(
    r"([a-z0-9][a-z0-9_\-*/@]{0,255})=([\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e])"
)
_OWS = " \t"
_ZERO_TRACE_ID = "0" * 32
_ZERO_SPAN_ID = "0" * 16


def parse_traceparent(value: str) -> trace.SpanContext | None:
    """The remote span context in a ``traceparent`` value, or None when it must start a new trace."""
    if len(value) > _MAX_TRACEPARENT_LENGTH:
        return None
    match = _TRACEPARENT.fullmatch(value.strip(_OWS))
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == _ZERO_TRACE_ID or span_id == _ZERO_SPAN_ID:
        return None
    return trace.SpanContext(
        trace_id=int(trace_id, 16),
        span_id=int(span_id, 16),
        is_remote=True,
        trace_flags=trace.TraceFlags(int(flags, 16) & _KNOWN_FLAGS),
    )


class W3CTraceState(TraceState):
    """A :class:`TraceState` that follows the current key grammar and the W3C size rules.

    Built from ``(key, value)`` pairs (invalid pairs and repeated keys skipped, the result shortened to
    the limits), or from headers with :meth:`from_header`. ``add``/``update``/``delete`` keep the class.
    """

    def __init__(self, entries: Iterable[tuple[str, str]] | None = None) -> None:
        self._dict: dict[str, str] = {}
        for key, value in entries or ():
            if key in self._dict or not _is_member(key, value):
                continue
            self._dict[key] = value
        _shorten(self._dict)

    @classmethod
    def from_header(cls, header_list: Sequence[str]) -> W3CTraceState:
        """Parse one or more ``tracestate`` header values; empty when any member is invalid."""
        members = _members(header_list)
        if members is None:
            return cls()
        state = cls()
        for key, value in members:
            state._dict.setdefault(key, value)
        _shorten(state._dict)
        return state

    def add(self, key: str, value: str) -> W3CTraceState:
        if key in self._dict:
            return self
        return self.update(key, value)

    def update(self, key: str, value: str) -> W3CTraceState:
        """``key`` moved to the front with ``value``; entries at the end give way if the list is full."""
        if not _is_member(key, value):
            return self
        return W3CTraceState([(key, value), *((k, v) for k, v in self._dict.items() if k != key)])

    def delete(self, key: str) -> W3CTraceState:
        if key not in self._dict:
            return self
        return W3CTraceState((k, v) for k, v in self._dict.items() if k != key)


def _is_member(key: object, value: object) -> bool:
    return isinstance(key, str) and isinstance(value, str) and _MEMBER.fullmatch(f"{key}={value}") is not None


def _members(header_list: Sequence[str]) -> list[tuple[str, str]] | None:
    """The (key, value) pairs of the combined header, or None when it must be dropped as a whole."""
    combined = ",".join(header_list)
    if len(combined) > _MAX_TRACESTATE_INPUT:
        logger.info("Dropped a tracestate of %d characters unread", len(combined))
        return None
    members: list[tuple[str, str]] = []
    for part in combined.split(","):
        member = part.strip(_OWS)
        if not member:
            continue
        match = _MEMBER.fullmatch(member)
        if match is None:
            logger.info("Dropped a tracestate with an invalid member %s", safe_repr(member))
            return None
        members.append((match[1], match[2]))
        if len(members) > MAX_TRACESTATE_MEMBERS:
            logger.info("Dropped a tracestate of more than %d members", MAX_TRACESTATE_MEMBERS)
            return None
    return members


def _shorten(entries: dict[str, str]) -> None:
    """Cut whole entries until the list fits the limits: long ones first, then from the end."""
    while len(entries) > MAX_TRACESTATE_MEMBERS:
        entries.popitem()
    length = sum(len(k) + len(v) + 2 for k, v in entries.items()) - 1
    if length <= MAX_TRACESTATE_LENGTH:
        return
    for key in reversed([k for k, v in entries.items() if len(k) + len(v) + 1 > _LONG_ENTRY]):
        length -= len(key) + len(entries.pop(key)) + 2
        if length <= MAX_TRACESTATE_LENGTH:
            return
    while length > MAX_TRACESTATE_LENGTH:
        key, value = entries.popitem()
        length -= len(key) + len(value) + 2


class W3CTraceContextPropagator(TraceContextTextMapPropagator):
    """W3C Trace Context propagation with the parsing above; injection is the SDK's."""

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        if context is None:
            context = Context()
        values = getter.get(carrier, self._TRACEPARENT_HEADER_NAME)
        if not values:
            return context
        if isinstance(values, str):
            values = [values]
        if len(values) > 1:
            logger.info("Ignored %d traceparent headers on one request; a new trace starts", len(values))
            return context
        span_context = parse_traceparent(values[0])
        if span_context is None:
            logger.info("Ignored a malformed traceparent %s; a new trace starts", safe_repr(values[0]))
            return context
        tracestate = getter.get(carrier, self._TRACESTATE_HEADER_NAME)
        if tracestate:
            span_context = trace.SpanContext(
                span_context.trace_id,
                span_context.span_id,
                is_remote=True,
                trace_flags=span_context.trace_flags,
                trace_state=W3CTraceState.from_header(
                    [tracestate] if isinstance(tracestate, str) else tracestate
                ),
            )
        return trace.set_span_in_context(trace.NonRecordingSpan(span_context), context)
