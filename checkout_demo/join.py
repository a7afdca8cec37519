"""Continuing a stored transaction: work for an order runs under the order's correlation ID."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tracing_app.context import TraceContext, activate, current, deactivate, from_carrier


@contextmanager
def join_transaction(correlation_id: str) -> Iterator[TraceContext]:
    """Make ``correlation_id`` current for the block, keeping the running hop as the cause.

    A checkout request that did not send the order's ID back still starts the order's saga under the
    order's ID; the request's own hop stays the causation link, so the trace shows what started it.
    """
    running = current()
    if running is not None and running.correlation_id == correlation_id:
        yield running
        return
    ctx = from_carrier(
        correlation_id,
        hop_id=running.hop_id if running else None,
        causation_id=running.causation_id if running else None,
        origin=running.origin if running else "bound",
        sequence=running.sequence if running else 0,
    )
    token = activate(ctx)
    try:
        yield ctx
    finally:
        deactivate(token)
