"""Work for an order runs under the order's correlation ID, linked to the hop that started it."""

from __future__ import annotations

from checkout_demo.join import join_transaction
from tracing_app.context import bind, current, get_correlation_id
from tracing_app.ids import new_id


def test_joining_from_a_request_keeps_the_request_as_the_cause():
    order_id = new_id()
    with bind(origin="http") as request:
        request.tick()
        with join_transaction(order_id) as joined:
            assert get_correlation_id() == order_id
            assert joined.hop_id == request.hop_id
            assert joined.sequence == request.sequence
        assert current() is request
    assert current() is None


def test_joining_the_transaction_already_current_changes_nothing():
    with bind() as ctx, join_transaction(ctx.correlation_id) as joined:
        assert joined is ctx


def test_joining_outside_any_transaction():
    order_id = new_id()
    with join_transaction(order_id) as joined:
        assert (joined.correlation_id, joined.causation_id) == (order_id, None)
    assert current() is None
