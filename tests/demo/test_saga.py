"""The saga's steps on PostgreSQL: concurrency-safe reservation, idempotent steps, compensation."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from checkout_demo import saga, tasks
from checkout_demo.gateway import Faults, GatewayTimeout, PaymentGateway
from checkout_demo.models import GatewayCharge, Notification, Order, Payment, Product, Shipment
from tests.demo.conftest import make_order
from tracing_app.outbox.models import OutboxMessage

pytestmark = pytest.mark.django_db(transaction=True)
Status = Order.Status


def stock(sku):
    return Product.objects.get(sku=sku).stock


def status(order):
    return Order.objects.get(pk=order.pk).status


def test_concurrent_reservations_never_oversell(catalog):
    Product.objects.filter(sku="LAMP-01").update(stock=5)
    orders = [make_order(("LAMP-01", 1), status=Status.PROCESSING) for _ in range(8)]
    barrier = threading.Barrier(len(orders))
    failures = []

    def reserve(order):
        try:
            barrier.wait()
            saga.reserve_stock(order.pk)
        except saga.CheckoutFailed as exc:
            failures.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=reserve, args=(order,)) for order in orders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == ["out_of_stock"] * 3
    assert stock("LAMP-01") == 0
    assert Order.objects.filter(status=Status.RESERVED).count() == 5
    assert Order.objects.filter(status=Status.PROCESSING).count() == 3


def test_reservation_is_all_lines_or_none(catalog):
    order = make_order(("MUG-01", 2), ("LAMP-01", 4), status=Status.PROCESSING)
    with pytest.raises(saga.CheckoutFailed) as failed:
        saga.reserve_stock(order.pk)
    assert failed.value.code == "out_of_stock"
    assert "Only 3 of LAMP-01 left" in failed.value.message
    assert stock("MUG-01") == 500
    assert status(order) == Status.PROCESSING


def test_reserving_twice_takes_stock_once(catalog):
    order = make_order(("MUG-01", 2), status=Status.PROCESSING)
    saga.reserve_stock(order.pk)
    saga.reserve_stock(order.pk)
    assert stock("MUG-01") == 498
    assert status(order) == Status.RESERVED


def test_checkout_is_queued_in_the_orders_transaction(catalog):
    order = make_order(("MUG-01", 1))
    with transaction.atomic():
        saga.start_checkout(order.pk, "pm_card_ok", publish=tasks.publish_checkout)
        (queued,) = OutboxMessage.objects.all()
    assert queued.correlation_id == order.correlation_id
    assert queued.task_name == (
        "chain(checkout_demo.reserve_stock, checkout_demo.charge_payment, checkout_demo.confirm_order)"
    )


def test_a_rolled_back_checkout_queues_nothing(catalog):
    order = make_order(("MUG-01", 1))
    with transaction.atomic():
        saga.start_checkout(order.pk, "pm_card_ok", publish=tasks.publish_checkout)
        transaction.set_rollback(True)
    assert not OutboxMessage.objects.exists()
    assert status(order) == Status.PENDING


def test_checkout_starts_once(catalog):
    order = make_order(("MUG-01", 1))
    saga.start_checkout(order.pk, "pm_card_ok", publish=lambda o: None)
    with pytest.raises(saga.CheckoutNotAllowed) as refused:
        saga.start_checkout(order.pk, "pm_card_ok", publish=lambda o: None)
    assert refused.value.status == Status.PROCESSING


def run_charge(order, gateway):
    payment = saga.prepare_payment(order.pk)
    saga.record_charge(payment, saga.call_gateway(payment, gateway))


def test_the_happy_path(catalog):
    order = make_order(("MUG-01", 2), status=Status.PROCESSING)
    saga.reserve_stock(order.pk)
    run_charge(order, PaymentGateway(Faults()))
    notified = []
    saga.confirm(order.pk, notify=lambda *args: notified.append(args))
    saga.confirm(order.pk, notify=lambda *args: notified.append(args))

    order.refresh_from_db()
    assert order.status == Status.CONFIRMED
    assert order.payment.status == Payment.Status.CAPTURED
    assert order.payment.charge_id == GatewayCharge.objects.get(reference=f"order-{order.pk}").charge_id
    assert order.payment.amount == order.total == 25
    assert Shipment.objects.filter(order=order).count() == 1
    assert notified == [(order.pk, Notification.Kind.CONFIRMED)]
    assert stock("MUG-01") == 498


def test_a_retried_charge_uses_the_same_key_and_charges_once(catalog):
    order = make_order(("MUG-01", 1), status=Status.PROCESSING, method="pm_card_lost_response")
    saga.reserve_stock(order.pk)
    gateway = PaymentGateway(Faults(), sleep=lambda seconds: None)
    with pytest.raises(GatewayTimeout):
        run_charge(order, gateway)
    run_charge(order, gateway)
    payment = Payment.objects.get(order=order)
    assert payment.attempts == 2
    assert payment.status == Payment.Status.CAPTURED
    assert GatewayCharge.objects.filter(idempotency_key=payment.idempotency_key).count() == 1
    assert status(order) == Status.PAID


def test_a_decline_is_recorded_and_compensated(catalog):
    order = make_order(("BOOK-01", 3), status=Status.PROCESSING, method="pm_card_declined")
    saga.reserve_stock(order.pk)
    assert stock("BOOK-01") == 197
    with pytest.raises(saga.CheckoutFailed) as failed:
        run_charge(order, PaymentGateway(Faults()))
    assert failed.value.code == "payment_declined"
    assert Payment.objects.get(order=order).decline_code == "card_declined"

    notified = []
    assert saga.compensate(
        order.pk, failed.value.code, failed.value.message, notify=lambda *a: notified.append(a)
    )
    assert not saga.compensate(order.pk, "again", "again", notify=lambda *a: notified.append(a))
    order.refresh_from_db()
    assert (order.status, order.failure_code) == (Status.FAILED, "payment_declined")
    assert stock("BOOK-01") == 200  # released once, not twice
    assert notified == [(order.pk, Notification.Kind.FAILED)]


def test_compensating_before_reservation_releases_nothing(catalog):
    order = make_order(("MUG-01", 2), status=Status.PROCESSING)
    saga.compensate(order.pk, "out_of_stock", "none left", notify=lambda *a: None)
    assert status(order) == Status.FAILED
    assert stock("MUG-01") == 500


def test_a_charge_for_a_failed_order_is_not_attempted(catalog):
    order = make_order(("MUG-01", 1), status=Status.FAILED)
    assert saga.prepare_payment(order.pk) is None
    assert not Payment.objects.exists()


def test_a_notification_is_sent_once(catalog):
    order = make_order(("MUG-01", 1), status=Status.CONFIRMED)
    assert saga.send_notification(order.pk, Notification.Kind.CONFIRMED)
    assert not saga.send_notification(order.pk, Notification.Kind.CONFIRMED)
    assert Notification.objects.get().recipient == "buyer@example.com"
