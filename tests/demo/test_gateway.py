"""The simulated payment gateway: each fault, and deduplication by idempotency key."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection, transaction

from checkout_demo.gateway import (
    CardDeclined,
    Faults,
    GatewayTimeout,
    IdempotencyKeyReused,
    PaymentGateway,
)
from checkout_demo.models import GatewayCall, GatewayCharge

pytestmark = pytest.mark.django_db(transaction=True)

AMOUNT = Decimal("12.50")


class Clock:
    """Records the waits the gateway asks for instead of sleeping through them."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def gateway(clock):
    return PaymentGateway(Faults(TIMEOUT=2.0, SLOW_SECONDS=0.5, TIMEOUTS_BEFORE_SUCCESS=2), sleep=clock)


def charge(gateway, method="pm_card_ok", key="key-1", amount=AMOUNT):
    return gateway.charge(
        amount=amount, currency="EUR", payment_method=method, idempotency_key=key, reference="order-1"
    )


def outcomes(key="key-1"):
    return list(GatewayCall.objects.filter(idempotency_key=key).values_list("outcome", flat=True))


def test_a_second_call_with_the_same_key_replays_the_charge(gateway):
    first = charge(gateway)
    second = charge(gateway)
    assert not first.replayed
    assert second.replayed
    assert second.charge_id == first.charge_id
    assert GatewayCharge.objects.count() == 1
    assert outcomes() == ["charged", "replayed"]


def test_different_keys_are_different_charges(gateway):
    assert charge(gateway, key="a").charge_id != charge(gateway, key="b").charge_id
    assert GatewayCharge.objects.count() == 2


def test_a_declined_card_stays_declined_without_a_new_charge(gateway):
    with pytest.raises(CardDeclined) as first:
        charge(gateway, "pm_card_insufficient_funds")
    with pytest.raises(CardDeclined) as again:
        charge(gateway, "pm_card_insufficient_funds")
    assert first.value.code == again.value.code == "insufficient_funds"
    assert GatewayCharge.objects.get().status == GatewayCharge.Status.DECLINED
    assert outcomes() == ["declined", "declined"]


def test_timeouts_before_success_charge_nothing_until_they_pass(gateway, clock):
    for _ in range(2):
        with pytest.raises(GatewayTimeout):
            charge(gateway, "pm_card_timeout")
        assert not GatewayCharge.objects.exists()
    assert not charge(gateway, "pm_card_timeout").replayed
    assert clock.waits == [2.0, 2.0]
    assert outcomes() == ["timeout", "timeout", "charged"]


def test_a_lost_response_is_recovered_by_retrying_with_the_same_key(gateway):
    with pytest.raises(GatewayTimeout):
        charge(gateway, "pm_card_lost_response")
    lost = GatewayCharge.objects.get()
    assert lost.status == GatewayCharge.Status.SUCCEEDED  # charged, though the caller never heard

    retried = charge(gateway, "pm_card_lost_response")
    assert retried.replayed
    assert retried.charge_id == lost.charge_id
    assert GatewayCharge.objects.count() == 1
    assert outcomes() == ["response_lost", "replayed"]


def test_an_unreachable_gateway_always_times_out(gateway):
    for _ in range(3):
        with pytest.raises(GatewayTimeout):
            charge(gateway, "pm_card_unreachable")
    assert not GatewayCharge.objects.exists()


def test_slow_answers_within_the_timeout_succeed_and_beyond_it_time_out(clock):
    assert not charge(
        PaymentGateway(Faults(TIMEOUT=2.0, SLOW_SECONDS=0.5), sleep=clock), "pm_card_slow"
    ).replayed
    assert clock.waits == [0.5]
    with pytest.raises(GatewayTimeout):
        charge(PaymentGateway(Faults(TIMEOUT=2.0, LATENCY=3.0), sleep=clock), key="key-2")
    assert clock.waits == [0.5, 2.0]


def test_a_key_reused_for_another_amount_is_refused(gateway):
    charge(gateway)
    with pytest.raises(IdempotencyKeyReused):
        charge(gateway, amount=Decimal("99.00"))
    assert GatewayCharge.objects.get().amount == AMOUNT


def test_random_faults_are_the_same_for_the_same_key(clock):
    faults = Faults(TIMEOUT=1.0, DECLINE_RATE=0.3, TIMEOUT_RATE=0.3, LOST_RESPONSE_RATE=0.3)

    def run(prefix):
        seen = []
        for n in range(12):
            try:
                charge(PaymentGateway(faults, sleep=clock), key=f"{prefix}-{n}")
                seen.append("charged")
            except GatewayTimeout:
                seen.append("timeout")
            except CardDeclined:
                seen.append("declined")
        return seen

    first = run("k")
    GatewayCall.objects.all().delete()
    GatewayCharge.objects.all().delete()
    assert run("k") == first
    assert {"charged", "timeout", "declined"} <= set(first)


def test_settings_configure_the_faults(settings):
    settings.CHECKOUT_DEMO = {"GATEWAY": {"TIMEOUT": 0.25, "DECLINE_RATE": 1.0}}
    assert Faults.from_settings() == Faults(TIMEOUT=0.25, DECLINE_RATE=1.0)
    settings.CHECKOUT_DEMO = {"GATEWAY": {"TIMEOUTT": 1}}
    with pytest.raises(ValueError, match="TIMEOUTT"):
        Faults.from_settings()


def test_it_refuses_to_run_inside_a_transaction(gateway):
    with transaction.atomic(), pytest.raises(RuntimeError, match="outside a database transaction"):
        charge(gateway)
    assert not GatewayCall.objects.exists()


def test_concurrent_calls_with_one_key_charge_once(gateway):
    barrier = threading.Barrier(8)
    results, errors = [], []

    def call():
        try:
            barrier.wait()
            results.append(charge(gateway))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len({r.charge_id for r in results}) == 1
    assert [r.replayed for r in results].count(False) == 1
    assert GatewayCharge.objects.count() == 1
