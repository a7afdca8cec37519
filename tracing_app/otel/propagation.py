"""The global propagator tracing_app installs: W3C Trace Context, then W3C Baggage, for untrusted carriers.

- ``traceparent`` / ``tracestate``: :class:`tracing_app.otel.tracecontext.W3CTraceContextPropagator`,
  to the current W3C grammar (the SDK's parser rejects valid multi-tenant keys and empties a
  ``tracestate`` with a repeated key).
- ``baggage``: the SDK's parser, except that a header over 8192 bytes is dropped with a short, escaped
  line instead of being logged in full at WARNING.
- What the SDK and these parsers log while extracting outside a transaction is held in the extracted
  context and logged when the transaction starts (:mod:`tracing_app.otel.sdk_logs`); an extraction
  inside one adds its correlation ID to the extracted baggage.
"""

from __future__ import annotations

import logging

from opentelemetry import propagate
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context, get_current
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import CarrierT, Getter, TextMapPropagator, default_getter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tracing_app.context import current
from tracing_app.ids import safe_repr
from tracing_app.otel import sdk_logs
from tracing_app.otel.carried_baggage import MAX_BYTES, with_correlation_id
from tracing_app.otel.tracecontext import W3CTraceContextPropagator

logger = logging.getLogger(sdk_logs.OWN_LOGGER)


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
            if size > MAX_BYTES:
                logger.info("Ignored a baggage header of %d bytes: %s", size, safe_repr(first, 48))
                return get_current() if context is None else context
        return super().extract(carrier, context, getter)


class TransactionPropagator(CompositePropagator):
    """Trace context then baggage; log lines of an extraction outside a transaction wait for it.

    Inside a transaction (a Celery task's message, extracted by OpenTelemetry's task receiver once the
    task's context is current) the extracted context also carries the correlation ID as baggage, so the
    context attached for the hop carries it onwards.
    """

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        ctx = current()
        if ctx is not None:
            return with_correlation_id(ctx, super().extract(carrier, context, getter))
        with sdk_logs.Held() as records:
            extracted = super().extract(carrier, context, getter)
        return sdk_logs.keep(records, extracted)


def build() -> TransactionPropagator:
    """The propagator :func:`install` makes global."""
    return TransactionPropagator([W3CTraceContextPropagator(), GuardedBaggagePropagator()])


def _is_sdk_default(textmap: TextMapPropagator) -> bool:
    """Whether ``textmap`` is the SDK's default: exactly tracecontext then baggage, unmodified classes."""
    if not isinstance(textmap, CompositePropagator):
        return False
    kinds = [type(p) for p in textmap._propagators]
    return kinds == [TraceContextTextMapPropagator, W3CBaggagePropagator]


def install() -> TextMapPropagator | None:
    """Swap the SDK's default global propagator for :func:`build`'s; returns the one replaced.

    A propagator the application chose (``OTEL_PROPAGATORS=b3,...`` or ``set_global_textmap``) is left
    alone, and None is returned.
    """
    installed = propagate.get_global_textmap()
    if not _is_sdk_default(installed):
        return None
    propagate.set_global_textmap(build())
    return installed


def restore(previous: TextMapPropagator | None) -> None:
    """Put back what :func:`install` replaced."""
    if previous is not None:
        propagate.set_global_textmap(previous)
