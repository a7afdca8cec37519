"""The charge task run twice at once (a redelivery while the first run is still going): one charge."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from checkout_demo.models import GatewayCall, GatewayCharge, Order, Payment
from checkout_demo.tasks import charge_payment
from tests.demo.conftest import make_order
from tracing_app.idempotency.models import IdempotencyRecord

pytestmark = pytest.mark.django_db(transaction=True)


def test_overlapping_runs_charge_and_record_once(catalog, settings):
    # Long enough an answer that the second run passes its status check while the first waits on it.
    settings.CHECKOUT_DEMO = {"GATEWAY": {"SLOW_SECONDS": 0.5, "TIMEOUT": 5.0}}
    order = make_order(("MUG-01", 1), status=Order.Status.RESERVED, method="pm_card_slow")
    barrier = threading.Barrier(2)
    results = []

    def run():
        try:
            barrier.wait()
            results.append(charge_payment.apply(args=[order.pk]).status)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == ["SUCCESS", "SUCCESS"]
    payment = Payment.objects.get(order=order)
    assert payment.attempts == 2  # both runs reached the gateway...
    assert sorted(GatewayCall.objects.values_list("outcome", flat=True)) == ["charged", "replayed"]
    assert GatewayCharge.objects.count() == 1  # ...which charged once
    record = IdempotencyRecord.objects.get(operation="checkout_demo.record_charge")
    assert (record.state, record.replay_count) == ("completed", 1)  # and the charge was recorded once
    assert (payment.status, Order.objects.get().status) == ("captured", "paid")
