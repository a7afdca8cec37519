"""One sampling decision per transaction, shared by spans and trace events.

With OpenTelemetry on, the decision is made where the transaction's trace starts, and travels in the
``traceparent`` sampled flag:

- A span with a parent follows it (``ParentBased``): an incoming ``traceparent`` decides for the request,
  a task message's for the task, a local parent for its children.
- A span that starts a trace takes the current transaction's decision (``TraceContext.sampled``) when one
  is current (a ``bind()`` block, a task published without a trace), else applies the one sampling
  function (:func:`tracing_app.sampling.is_sampled`) to the trace ID. At the HTTP edge the server span
  starts before the correlation middleware runs, so it is sampled by trace ID; the middleware then
  adopts the span's flag as the transaction's ``sampled``, which every published task carries on.
  Trace events and spans are therefore kept or dropped together.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from tracing_app.context import current
from tracing_app.sampling import is_sampled


class TransactionRootSampler(Sampler):
    """Decides for spans without a parent: the transaction's decision, else the trace ID at SAMPLE_RATE.

    The rate is read on every root decision, so ``override_settings`` applies.
    """

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        ctx = current()
        sampled = ctx.sampled if ctx is not None else is_sampled(f"{trace_id:032x}")
        if not sampled:
            return SamplingResult(Decision.DROP)
        # The SDK gives a span the attributes its sampler returns: pass the span's own through.
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

    def get_description(self) -> str:
        return "TransactionRootSampler"


def transaction_sampler() -> Sampler:
    """The sampler to give a TracerProvider you build yourself, to keep spans and trace events in step."""
    return ParentBased(root=TransactionRootSampler())
