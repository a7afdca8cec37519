"""The checkout saga on Celery: reserve stock -> charge payment -> confirm, then notify.

The three steps run as one chain queued in the order's transaction through the outbox
(:func:`tracing_app.outbox.send_on_commit`), so it is sent if and once the order commits. Every task is
:class:`DurableStep`: late acks, the message back on the queue when its worker process dies, and
infrastructure errors (database or broker unreachable) retried with capped backoff, all safe because
every step is idempotent (see :mod:`checkout_demo.saga`). When a step fails for a business reason (a
declined card, no stock, a charge that kept timing out) or a bug, :class:`SagaStep` queues
:func:`compensate_checkout`, which releases the stock and marks the order failed. An order left half-way
by faults that outlasted the retries is driven on by :func:`reconcile_orders`, a periodic task on beat.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import Task, chain, shared_task
from celery.canvas import Signature
from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerError

from checkout_demo import saga
from checkout_demo.conf import demo_settings
from checkout_demo.gateway import GatewayError, GatewayTimeout
from checkout_demo.join import join_transaction
from checkout_demo.models import Order
from tracing_app.idempotency import idempotent_block
from tracing_app.outbox import send_on_commit
from tracing_app.resumption import resume_transaction

logger = logging.getLogger("checkout_demo.tasks")

FAILURE_CODES: dict[type[Exception], tuple[str, str]] = {
    GatewayTimeout: ("payment_unavailable", "The payment gateway did not answer; no charge was confirmed."),
    GatewayError: ("payment_error", "The payment gateway refused the request."),
}


#: Faults of the infrastructure, not of the order: the step is retried, never compensated for.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    BrokerError,
    ConnectionError,
)


class DurableStep(Task):
    """A task that survives infrastructure faults: every task of the demo derives from it.

    ``acks_late`` with ``reject_on_worker_lost``: a message whose worker process was killed goes back to
    the queue instead of being acknowledged unrun. Transient errors are retried with exponential backoff
    (1, 2, 4 ... capped at 30 seconds, about 5 minutes in all); past that, the reconciler takes over.
    """

    acks_late = True
    reject_on_worker_lost = True
    autoretry_for = TRANSIENT_ERRORS
    retry_backoff = 1
    retry_backoff_max = 30
    retry_jitter = False
    max_retries = 12


class SagaStep(DurableStep):
    """A saga step: compensation when the step fails for good for a business reason or a bug."""

    # Expected outcomes: Celery logs them as a task failure without a traceback.
    throws = (saga.CheckoutFailed, GatewayTimeout)

    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        order_id = args[0] if args else kwargs["order_id"]
        if isinstance(exc, TRANSIENT_ERRORS):
            logger.error(
                "Order %s: %s gave up on %r; the reconciler will resume it", order_id, self.name, exc
            )
            return
        code, message = failure_reason(exc)
        send_on_commit(compensate_checkout.si(order_id, code, message))


def failure_reason(exc: Exception) -> tuple[str, str]:
    if isinstance(exc, saga.CheckoutFailed):
        return exc.code, exc.message
    for kind, reason in FAILURE_CODES.items():
        if isinstance(exc, kind):
            return reason
    return "internal_error", "The checkout failed unexpectedly; quote the correlation ID to support."


RECORD_CHARGE_LEASE = 15


def retry_countdown(retries: int) -> float:
    """Exponential backoff: BACKOFF, 2 x BACKOFF, 4 x BACKOFF, ... capped at BACKOFF_MAX."""
    conf = demo_settings()
    return min(conf["CHARGE_RETRY_BACKOFF"] * 2**retries, conf["CHARGE_RETRY_BACKOFF_MAX"])


@shared_task(base=SagaStep, name="checkout_demo.reserve_stock")
def reserve_stock(order_id: int) -> None:
    saga.reserve_stock(order_id)


@shared_task(base=SagaStep, bind=True, name="checkout_demo.charge_payment")
def charge_payment(self: Task, order_id: int) -> None:
    payment = saga.prepare_payment(order_id)
    if payment is None:
        return
    try:
        charge = saga.call_gateway(payment)
    except GatewayTimeout as exc:
        max_retries = demo_settings()["CHARGE_MAX_RETRIES"]
        if self.request.retries >= max_retries:
            raise
        countdown = retry_countdown(self.request.retries)
        logger.warning(
            "Charge for order %s timed out (attempt %s of %s); retrying in %ss with the same key",
            order_id,
            self.request.retries + 1,
            max_retries + 1,
            countdown,
        )
        raise self.retry(exc=exc, countdown=countdown, max_retries=max_retries) from exc
    # Recorded once per payment key: two overlapping runs (a redelivery while the first still runs) both
    # get the one charge from the gateway, and only the first writes it. The write takes milliseconds: a
    # short lease lets a retry take over quickly from an attempt the database cut off.
    with idempotent_block(
        "checkout_demo.record_charge", key=payment.idempotency_key, lease=RECORD_CHARGE_LEASE
    ) as step:
        if step.completed:
            logger.info("Charge %s for order %s was already recorded", step.result, order_id)
            return
        saga.record_charge(payment, charge)
        step.result = charge.charge_id


@shared_task(base=SagaStep, name="checkout_demo.confirm_order")
def confirm_order(order_id: int) -> None:
    saga.confirm(order_id, notify=publish_notification)


@shared_task(base=DurableStep, name="checkout_demo.compensate_checkout")
def compensate_checkout(order_id: int, code: str, message: str) -> None:
    saga.compensate(order_id, code, message, notify=publish_notification)


@shared_task(base=DurableStep, name="checkout_demo.notify_customer")
def notify_customer(order_id: int, kind: str) -> None:
    saga.send_notification(order_id, kind)


def publish_notification(order_id: int, kind: str) -> None:
    """Queue the customer e-mail in the current transaction."""
    send_on_commit(notify_customer.si(order_id, kind))


def remaining_steps(order: Order) -> Signature:
    """The saga's steps from the order's status on: all three for a new checkout, confirm for a paid order."""
    steps = {
        Order.Status.PROCESSING: [reserve_stock, charge_payment, confirm_order],
        Order.Status.RESERVED: [charge_payment, confirm_order],
        Order.Status.PAID: [confirm_order],
    }[Order.Status(order.status)]
    first, *rest = (step.si(order.pk) for step in steps)
    return chain(first, *rest) if rest else first


def publish_checkout(order: Order) -> None:
    """Queue the saga's chain in the order's transaction, under the order's correlation ID."""
    with join_transaction(order.correlation_id):
        send_on_commit(remaining_steps(order))


@shared_task(base=DurableStep, name="checkout_demo.reconcile_orders")
def reconcile_orders() -> int:
    """Resume orders stuck half-way (see ``RECONCILE_AFTER``); each under the order's own correlation ID.

    A paid order is confirmed (never charged again), a reserved one charged with the same gateway key (the
    gateway answers with the first charge if there was one) or compensated when the charge fails, a
    processing one started again from stock reservation. Returns how many orders were resumed.
    """
    conf = demo_settings()
    resumed = 0
    for order in saga.stuck_orders(timedelta(seconds=conf["RECONCILE_AFTER"]), conf["RECONCILE_BATCH_SIZE"]):
        with resume_transaction(
            order.correlation_id, reason=f"checkout stuck in {order.status}", order_id=order.pk
        ):
            resumed += saga.resume(order, publish=lambda stuck: send_on_commit(remaining_steps(stuck)))
    return resumed
