"""The reconciler: orders stuck half-way are resumed from their state, once per deadline, in their own
transaction, through the outbox (the real publish path into kombu's memory transport)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from kombu import Message

from checkout_demo import tasks
from checkout_demo.models import Order
from tests.demo.conftest import make_order
from tracing_app.celery import CORRELATION_HEADER
from tracing_app.context import bind
from tracing_app.outbox.enqueue import wait_for_sender
from tracing_app.traces import recorder
from tracing_app.traces.models import TraceEvent

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

Status = Order.Status


@pytest.fixture
def tracing(settings: Any) -> Iterator[None]:
    settings.TRACING_APP = {**settings.TRACING_APP, "TRACE_ENABLED": True, "TRACE_FLUSH_INTERVAL": 3600}
    yield
    recorder.flush()


def stuck(status: str, seconds: float = 120) -> Order:
    order = make_order(("MUG-01", 1), status=status)
    Order.objects.filter(pk=order.pk).update(updated_at=timezone.now() - timedelta(seconds=seconds))
    return Order.objects.get(pk=order.pk)


def reconcile(drain: Callable[[], list[Message]]) -> tuple[int, list[Message]]:
    with bind(origin="beat"):
        resumed = tasks.reconcile_orders()
    assert wait_for_sender()
    return resumed, drain()


def steps_of(message: Message) -> list[str]:
    """The task a message runs, then the rest of its chain (which Celery carries last step first)."""
    rest = message.payload[2]["chain"] or []
    return [message.headers["task"], *(step["task"] for step in reversed(rest))]


@pytest.mark.usefixtures("catalog", "tracing")
def test_each_stuck_order_is_resumed_from_its_state_under_its_own_id(published) -> None:
    orders = {status: stuck(status) for status in (Status.PROCESSING, Status.RESERVED, Status.PAID)}
    resumed, messages = reconcile(published)
    assert resumed == 3
    by_order = {m.headers[CORRELATION_HEADER]: m for m in messages}
    steps = {status: steps_of(by_order[order.correlation_id]) for status, order in orders.items()}
    assert steps == {
        Status.PROCESSING: [
            "checkout_demo.reserve_stock",
            "checkout_demo.charge_payment",
            "checkout_demo.confirm_order",
        ],
        Status.RESERVED: ["checkout_demo.charge_payment", "checkout_demo.confirm_order"],
        Status.PAID: ["checkout_demo.confirm_order"],
    }
    recorder.flush()
    for order in orders.values():
        (event,) = TraceEvent.objects.filter(correlation_id=order.correlation_id, kind="transaction.resumed")
        assert event.name == f"checkout stuck in {order.status}"
        assert event.attributes == {"order_id": order.pk}


@pytest.mark.usefixtures("catalog", "tracing")
def test_an_order_is_resumed_once_per_deadline_and_never_before_it(published) -> None:
    late, recent = stuck(Status.RESERVED), stuck(Status.RESERVED, seconds=1)
    done = stuck(Status.CONFIRMED)
    assert reconcile(published)[0] == 1
    assert reconcile(published) == (0, []), "its deadline starts again from the resumption"
    assert Order.objects.get(pk=late.pk).updated_at > late.updated_at
    assert Order.objects.get(pk=recent.pk).updated_at == recent.updated_at
    assert Order.objects.get(pk=done.pk).updated_at == done.updated_at
