"""Resuming a stored transaction later: a reconciler or a cleanup job working for one earlier transaction.

A periodic job that finds work left unfinished (an order stuck half-way) runs in its own transaction; the
work it does for one stuck item belongs to that item's transaction instead. :func:`resume_transaction`
makes it current for a block, as a new hop caused by the job, and records a ``transaction.resumed``
event, so the item's trace shows when and why it was picked up again and everything that followed::

    @app.task
    def reconcile_orders():
        for order in Order.objects.filter(status="paid", updated_at__lt=deadline):
            with resume_transaction(order.correlation_id, reason="paid, never confirmed", order_id=order.pk):
                confirm_order.delay(order.pk)      # runs under the order's correlation ID
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import DatabaseError
from django.db.models import Max

from tracing_app import ids
from tracing_app.conf import app_settings
from tracing_app.context import TraceContext, activate, current, deactivate, from_carrier
from tracing_app.traces.recorder import emit

__all__ = ["resume_transaction"]

logger = logging.getLogger("tracing_app.resumption")


@contextmanager
def resume_transaction(correlation_id: str, *, reason: str, **attributes: Any) -> Iterator[TraceContext]:
    """Run the block as a new hop of the stored transaction ``correlation_id``; see the module docstring.

    The hop's cause is the running hop (the job's), if any. Its clock starts after the last event the
    trace store holds for the transaction, so the resumption and what follows order after everything
    that happened before, whatever the hosts' clocks say.
    """
    running = current()
    ctx = from_carrier(
        correlation_id,
        hop_id=ids.new_id(),
        causation_id=running.hop_id if running is not None else None,
        origin="resumed",
        sequence=_last_sequence(correlation_id),
    )
    token = activate(ctx)
    try:
        emit(ctx, "transaction.resumed", name=reason, attributes=attributes, error=False)
        yield ctx
    finally:
        deactivate(token)


def _last_sequence(correlation_id: str) -> int:
    if not app_settings.TRACE_ENABLED:
        return 0
    from tracing_app.traces.models import TraceEvent

    try:
        last = (
            TraceEvent.objects.using(app_settings.TRACE_DATABASE)
            .filter(correlation_id=correlation_id)
            .aggregate(last=Max("sequence"))["last"]
        )
    except DatabaseError:
        logger.warning("Could not read the clock of transaction %s; resuming at 0", correlation_id)
        return 0
    return last or 0
