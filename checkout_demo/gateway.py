"""A simulated payment provider, with the faults real ones have.

It behaves like a remote API with Stripe-style idempotency: every charge carries an idempotency key, and
a second call with the same key returns the first call's charge instead of charging again. Its ledger
(:class:`~checkout_demo.models.GatewayCharge`) and request log (:class:`~checkout_demo.models.GatewayCall`)
commit on their own, as a remote system's would, so call it outside any database transaction.

Test payment methods pick a fault deterministically:

==============================  ===================================================================
``pm_card_ok``                  charged
``pm_card_slow``                charged after ``SLOW_SECONDS`` (still within the client timeout)
``pm_card_declined``            declined, code ``card_declined``
``pm_card_insufficient_funds``  declined, code ``insufficient_funds``
``pm_card_timeout``             the first ``TIMEOUTS_BEFORE_SUCCESS`` calls per key time out before
                                reaching the provider (nothing charged); later calls are charged
``pm_card_lost_response``       the first call is charged but its response is lost (the client sees a
                                timeout); the retry, with the same key, gets the original charge back
``pm_card_unreachable``         every call times out
==============================  ===================================================================

On top of those, ``CHECKOUT_DEMO["GATEWAY"]`` can inject random faults into every call (rates 0.0-1.0):
``DECLINE_RATE``, ``TIMEOUT_RATE``, ``LOST_RESPONSE_RATE`` and a fixed ``LATENCY`` in seconds. The
draws are seeded by (key, call number), so a run can be replayed exactly.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, connection, transaction

from checkout_demo.conf import demo_settings
from checkout_demo.models import GatewayCall, GatewayCharge
from tracing_app.ids import derive_id, safe_repr

logger = logging.getLogger("checkout_demo.gateway")

PAYMENT_METHODS = (
    "pm_card_ok",
    "pm_card_slow",
    "pm_card_declined",
    "pm_card_insufficient_funds",
    "pm_card_timeout",
    "pm_card_lost_response",
    "pm_card_unreachable",
)
_DECLINE_CODES = {"pm_card_declined": "card_declined", "pm_card_insufficient_funds": "insufficient_funds"}


class GatewayError(Exception):
    """Any failed gateway call."""


class GatewayTimeout(GatewayError):
    """No answer within the client timeout: the charge may or may not have happened; retry, same key."""


class CardDeclined(GatewayError):
    """The provider refused the charge; retrying will not help."""

    def __init__(self, code: str, charge_id: str) -> None:
        super().__init__(f"card declined ({code})")
        self.code = code
        self.charge_id = charge_id

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return type(self), (self.code, self.charge_id)


class IdempotencyKeyReused(GatewayError):
    """The key was already used for a charge with other parameters (a bug in the caller)."""


@dataclass(frozen=True)
class Faults:
    """The gateway's behaviour; defaults make every ``pm_card_ok`` call succeed at once."""

    TIMEOUT: float = 1.0  # client timeout in seconds: a simulated timeout waits this long
    SLOW_SECONDS: float = 0.5  # how long pm_card_slow takes to answer
    TIMEOUTS_BEFORE_SUCCESS: int = 2  # calls per key that pm_card_timeout lets time out
    LATENCY: float = 0.0  # added to every call
    DECLINE_RATE: float = 0.0
    TIMEOUT_RATE: float = 0.0
    LOST_RESPONSE_RATE: float = 0.0

    @classmethod
    def from_settings(cls) -> Faults:
        configured = dict(demo_settings()["GATEWAY"])
        known = {f.name for f in fields(cls)}
        unknown = set(configured) - known
        if unknown:
            raise ValueError(f"unknown CHECKOUT_DEMO['GATEWAY'] keys: {sorted(unknown)}")
        return cls(**configured)


@dataclass(frozen=True)
class Charge:
    charge_id: str
    amount: Decimal
    currency: str
    replayed: bool


class PaymentGateway:
    """The client side of the simulated provider; ``sleep`` is injectable so unit tests need not wait."""

    def __init__(self, faults: Faults | None = None, sleep: Callable[[float], Any] = time.sleep) -> None:
        self.faults = faults or Faults.from_settings()
        self.sleep = sleep

    def charge(
        self, *, amount: Decimal, currency: str, payment_method: str, idempotency_key: str, reference: str
    ) -> Charge:
        """Charge ``amount`` once per ``idempotency_key``.

        Raises :class:`GatewayTimeout` (retry with the same key), :class:`CardDeclined` (final; a retry
        with the same key is declined again without a new charge) or :class:`IdempotencyKeyReused`.
        """
        if connection.in_atomic_block:
            raise RuntimeError("call the payment gateway outside a database transaction, like any remote API")
        faults = self.faults
        call_number = GatewayCall.objects.filter(idempotency_key=idempotency_key).count() + 1
        dice = random.Random(f"{idempotency_key}:{call_number}")
        log = _CallLog(idempotency_key, reference)

        latency = faults.SLOW_SECONDS if payment_method == "pm_card_slow" else 0.0
        latency += faults.LATENCY
        never_arrives = (
            payment_method == "pm_card_unreachable"
            or (payment_method == "pm_card_timeout" and call_number <= faults.TIMEOUTS_BEFORE_SUCCESS)
            or dice.random() < faults.TIMEOUT_RATE
        )
        if never_arrives or latency >= faults.TIMEOUT:
            self.sleep(faults.TIMEOUT)
            log.write(GatewayCall.Outcome.TIMEOUT)
            raise GatewayTimeout(f"no answer within {faults.TIMEOUT}s (call {call_number})")
        if latency:
            self.sleep(latency)

        declined = _DECLINE_CODES.get(payment_method)
        if declined is None and dice.random() < faults.DECLINE_RATE:
            declined = "card_declined"
        record, created = _record_charge(
            idempotency_key, amount, currency, payment_method, reference, declined
        )
        if record.amount != amount or record.currency != currency:
            log.write(GatewayCall.Outcome.REJECTED)
            raise IdempotencyKeyReused(
                f"key {safe_repr(idempotency_key)} was used for {record.amount} {record.currency}"
            )

        lose_response = created and (
            payment_method == "pm_card_lost_response" or dice.random() < faults.LOST_RESPONSE_RATE
        )
        if lose_response:
            self.sleep(faults.TIMEOUT)
            log.write(GatewayCall.Outcome.RESPONSE_LOST)
            raise GatewayTimeout(f"no answer within {faults.TIMEOUT}s (call {call_number})")
        if record.status == GatewayCharge.Status.DECLINED:
            log.write(GatewayCall.Outcome.DECLINED)
            raise CardDeclined(record.decline_code, record.charge_id)
        log.write(GatewayCall.Outcome.CHARGED if created else GatewayCall.Outcome.REPLAYED)
        return Charge(record.charge_id, record.amount, record.currency, replayed=not created)


class _CallLog:
    def __init__(self, idempotency_key: str, reference: str) -> None:
        self.idempotency_key = idempotency_key
        self.reference = reference

    def write(self, outcome: str) -> None:
        GatewayCall.objects.create(
            idempotency_key=self.idempotency_key, reference=self.reference, outcome=outcome
        )
        logger.info("Gateway call for %s: %s", self.reference, outcome)


def _record_charge(
    idempotency_key: str,
    amount: Decimal,
    currency: str,
    payment_method: str,
    reference: str,
    decline_code: str | None,
) -> tuple[GatewayCharge, bool]:
    """Insert the charge for ``idempotency_key`` or return the one a previous call inserted.

    The unique key decides between concurrent calls: the loser's insert fails inside its savepoint and
    it reads the winner's row, so two overlapping calls never charge twice.
    """
    try:
        with transaction.atomic():
            record = GatewayCharge.objects.create(
                charge_id="ch_" + derive_id("checkout_demo.gateway.charge", idempotency_key).lower(),
                idempotency_key=idempotency_key,
                amount=amount,
                currency=currency,
                payment_method=payment_method,
                status=GatewayCharge.Status.DECLINED if decline_code else GatewayCharge.Status.SUCCEEDED,
                decline_code=decline_code or "",
                reference=reference,
            )
    except IntegrityError:
        return GatewayCharge.objects.get(idempotency_key=idempotency_key), False
    return record, True
