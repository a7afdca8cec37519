"""W3C ``traceparent``/``tracestate``/``baggage`` from untrusted carriers: what the SDK lacks, and only that.

The SDK's parsers already ignore every malformed single header of the W3C Trace Context test suite
(versions ``ff``, ``00`` with trailing data, wrong lengths, upper-case or non-hex digits, all-zero trace or
parent IDs, illegal flags, headers over 512 characters) and start a new trace; they drop an invalid,
duplicated-key or oversized ``tracestate`` while keeping the trace; they skip malformed baggage entries and
ignore a baggage header over 8192 bytes. The test suite holds them to each of those cases.

Two gaps remain, closed here:

- A ``traceparent`` sent twice reaches the parser as two values under ASGI (and from a Celery message
  header that is a list), and the SDK would trust the first; the spec asks for a new trace.
- An oversized ``baggage`` header is logged *in full*, at WARNING, on every request that sends one;
  here it is dropped with a short, escaped line instead.
"""

from __future__ import annotations

import logging

from opentelemetry import propagate
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context, get_current
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import CarrierT, Getter, TextMapPropagator, default_getter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tracing_app.ids import safe_repr

logger = logging.getLogger("tracing_app.otel")

# W3C Baggage: a platform must propagate baggage of up to 8192 bytes and may drop anything larger.
MAX_BAGGAGE_BYTES = 8192


class StrictTraceContextPropagator(TraceContextTextMapPropagator):
    """The SDK's W3C Trace Context propagator, treating a repeated ``traceparent`` as invalid."""

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        values = getter.get(carrier, self._TRACEPARENT_HEADER_NAME)
        if values is not None and not isinstance(values, str) and len(values) > 1:
            logger.info("Ignored %d traceparent headers on one request; a new trace starts", len(values))
            return Context() if context is None else context
        return super().extract(carrier, context, getter)


class GuardedBaggagePropagator(W3CBaggagePropagator):
    """The SDK's W3C Baggage propagator, dropping an oversized header without logging its content."""

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        values = getter.get(carrier, self._BAGGAGE_HEADER_NAME)
        if values:
            first = values if isinstance(values, str) else values[0]
            size = len(first.encode("utf-8", "replace"))
            if size > MAX_BAGGAGE_BYTES:
                logger.info("Ignored a baggage header of %d bytes: %s", size, safe_repr(first, 48))
                return get_current() if context is None else context
        return super().extract(carrier, context, getter)


def _is_sdk_default(textmap: TextMapPropagator) -> bool:
    """Whether ``textmap`` is the SDK's default: exactly tracecontext then baggage, unmodified classes."""
    if not isinstance(textmap, CompositePropagator):
        return False
    kinds = [type(p) for p in textmap._propagators]
    return kinds == [TraceContextTextMapPropagator, W3CBaggagePropagator]


def install() -> TextMapPropagator | None:
    """Swap the SDK's default global propagator for the guarded one; returns the one replaced.

    A propagator the application chose (``OTEL_PROPAGATORS=b3,...`` or ``set_global_textmap``) is left
    alone, and None is returned.
    """
    current = propagate.get_global_textmap()
    if not _is_sdk_default(current):
        return None
    propagate.set_global_textmap(
        CompositePropagator([StrictTraceContextPropagator(), GuardedBaggagePropagator()])
    )
    return current


def restore(previous: TextMapPropagator | None) -> None:
    """Put back what :func:`install` replaced."""
    if previous is not None:
        propagate.set_global_textmap(previous)
