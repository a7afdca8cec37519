"""The scripted scenarios on PostgreSQL + RabbitMQ with a real ``celery worker``, checked at the source.

The scenario client speaks HTTP to a live server; a worker from the shared harness runs the saga. Then
the database and the worker's JSON log must agree with what the client saw: final states, one charge
per paid order, stock given back after failures, and each order's correlation ID in the worker's lines.
"""

from __future__ import annotations

import pytest

from checkout_demo.catalog import SEED_PRODUCTS, seed_products
from checkout_demo.customers import ensure_customers
from checkout_demo.models import GatewayCall, GatewayCharge, Notification, Order, Payment, Product
from checkout_demo.scenario import DemoClient, run_scenarios
from tests.support.waiting import wait_until
from tests.support.worker import run_worker
from tracing_app.idempotency.models import IdempotencyRecord

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

SAGA_TASKS = {
    "checkout_demo.reserve_stock",
    "checkout_demo.charge_payment",
    "checkout_demo.confirm_order",
    "checkout_demo.compensate_checkout",
    "checkout_demo.notify_customer",
}


def test_the_scenarios_end_right_on_postgresql_and_rabbitmq(live_server, rabbitmq_url, tmp_path):
    seed_products()
    tokens = ensure_customers(tmp_path)
    with run_worker(rabbitmq_url, concurrency=2) as worker:
        outcomes = run_scenarios(live_server.url, deadline_seconds=120, tokens=tokens)
        assert [(o.scenario.name, o.problems) for o in outcomes if not o.ok] == []
        assert {o.customer for o in outcomes} == set(tokens)
        unlinked = checkout_without_the_correlation_header(live_server.url, tokens["ada"])
        # Customers hear about every order; the notification is the saga's last task.
        wait_until(
            lambda: Notification.objects.count() == len(outcomes) + 1, timeout=30, what="the notifications"
        )
        records = worker.records()

    orders = {o.scenario.name: Order.objects.get(pk=o.order["id"]) for o in outcomes}
    orders["checkout without the header"] = unlinked
    assert Order.objects.count() == len(orders)  # the double submit made one order
    for outcome in outcomes:
        assert orders[outcome.scenario.name].customer.username == outcome.customer

    for name, order in orders.items():
        succeeded = GatewayCharge.objects.filter(reference=f"order-{order.pk}", status="succeeded").count()
        assert succeeded == (1 if order.status == "confirmed" else 0), name
        assert Notification.objects.filter(order=order).count() == 1, name
        recorded = IdempotencyRecord.objects.filter(
            operation="checkout_demo.record_charge", correlation_id=order.correlation_id, state="completed"
        )
        assert recorded.count() == (1 if order.status == "confirmed" else 0), name

    def outcomes_of(name):
        key = Payment.objects.get(order=orders[name]).idempotency_key
        return list(GatewayCall.objects.filter(idempotency_key=key).values_list("outcome", flat=True))

    assert outcomes_of("timeout, retried") == ["timeout", "timeout", "charged"]
    assert outcomes_of("charged, response lost") == ["response_lost", "replayed"]
    assert outcomes_of("gateway down") == ["timeout"] * 4  # the first try and three retries
    assert outcomes_of("declined") == ["declined"]

    seeded = {sku: stock for sku, _, _, _, stock in SEED_PRODUCTS}
    stock = dict(Product.objects.values_list("sku", "stock"))
    assert stock["BOOK-01"] == seeded["BOOK-01"]  # declined: released
    assert stock["STK-01"] == seeded["STK-01"]  # gateway down: released after the last retry
    assert stock["MUG-01"] == seeded["MUG-01"] - 4  # success, slow gateway, timeout retried, no header
    assert stock["TEE-01"] == seeded["TEE-01"] - 2  # response lost, double submit

    for name, order in orders.items():
        lines = [r for r in records if r.get("correlation_id") == order.correlation_id]
        ran = {r.get("task_name") for r in lines}
        expected = {
            "checkout_demo.reserve_stock",
            "checkout_demo.charge_payment",
            "checkout_demo.notify_customer",
        }
        expected.add(
            "checkout_demo.confirm_order"
            if order.status == "confirmed"
            else "checkout_demo.compensate_checkout"
        )
        assert expected <= ran, (name, ran)
        assert any(r["logger"] == "celery.app.trace" for r in lines), name
    order_ids = {order.correlation_id for order in orders.values()}
    # What the saga's own code logged while running its tasks, and Celery's lines about them.
    saga_lines = [
        r
        for r in records
        if r.get("task_name") in SAGA_TASKS and r["logger"].startswith(("checkout_demo.", "celery.app.trace"))
    ]
    assert saga_lines
    assert {r["correlation_id"] for r in saga_lines} <= order_ids


def checkout_without_the_correlation_header(base_url: str, token: str) -> Order:
    """A client that never sends X-Correlation-ID: the saga still runs under the order's ID."""
    client = DemoClient(base_url, token)
    body = {"email": "plain@example.com", "lines": [{"product": "MUG-01", "quantity": 1}]}
    created = client.data(
        client.call("POST", "/api/orders/", json=body, headers={"Idempotency-Key": "plain-1"})
    )
    started = client.call("POST", created["links"]["checkout"], json={"payment_method": "pm_card_ok"})
    assert started.headers["X-Correlation-ID"] != created["correlation_id"]
    wait_until(
        lambda: Order.objects.get(pk=created["id"]).status == "confirmed", timeout=30, what="the order"
    )
    return Order.objects.get(pk=created["id"])
