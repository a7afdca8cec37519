"""The checkout saga on Celery: reserve stock -> charge payment -> confirm, then notify.

The three steps run as one chain published after the order's transaction commits. Every step is
``acks_late`` and safe to run twice (see :mod:`checkout_demo.saga`). When a step fails for good (a business
failure, a charge that kept timing out, or a bug), :class:`SagaStep` publishes :func:`compensate_checkout`,
which releases the stock and marks the order failed.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, chain, shared_task

from checkout_demo import saga
from checkout_demo.conf import demo_settings
from checkout_demo.gateway import GatewayError, GatewayTimeout
from checkout_demo.join import join_transaction
from checkout_demo.models import Order
from tracing_app.idempotency.tasks import idempotent_block

logger = logging.getLogger("checkout_demo.tasks")

FAILURE_CODES: dict[type[Exception], tuple[str, str]] = {
    GatewayTimeout: ("payment_unavailable", "The payment gateway did not answer; no charge was confirmed."),
    GatewayError: ("payment_error", "The payment gateway refused the request."),
}


class SagaStep(Task):
    """A saga step: late acks, and compensation when the step fails for good (not on a retry)."""

    acks_late = True
    # Expected outcomes: Celery logs them as a task failure without a traceback.
    throws = (saga.CheckoutFailed, GatewayTimeout)

    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        order_id = args[0] if args else kwargs["order_id"]
        code, message = failure_reason(exc)
        compensate_checkout.delay(order_id, code, message)


def failure_reason(exc: Exception) -> tuple[str, str]:
    if isinstance(exc, saga.CheckoutFailed):
        return exc.code, exc.message
    for kind, reason in FAILURE_CODES.items():
        if isinstance(exc, kind):
            return reason
    return "internal_error", "The checkout failed unexpectedly; quote the correlation ID to support."


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
    # get the one charge from the gateway, and only the first writes it.
    with idempotent_block("checkout_demo.record_charge", key=payment.idempotency_key) as step:
        if step.completed:
            logger.info("Charge %s for order %s was already recorded", step.result, order_id)
            return
        saga.record_charge(payment, charge)
        step.result = charge.charge_id


@shared_task(base=SagaStep, name="checkout_demo.confirm_order")
def confirm_order(order_id: int) -> None:
    saga.confirm(order_id, notify=publish_notification)


@shared_task(acks_late=True, name="checkout_demo.compensate_checkout")
def compensate_checkout(order_id: int, code: str, message: str) -> None:
    saga.compensate(order_id, code, message, notify=publish_notification)


@shared_task(acks_late=True, name="checkout_demo.notify_customer")
def notify_customer(order_id: int, kind: str) -> None:
    saga.send_notification(order_id, kind)


def publish_notification(order_id: int, kind: str) -> None:
    notify_customer.delay(order_id, kind)


def publish_checkout(order: Order) -> None:
    """Publish the saga's chain inside the order's transaction (call it after the order commits)."""
    with join_transaction(order.correlation_id):
        chain(
            reserve_stock.si(order.pk), charge_payment.si(order.pk), confirm_order.si(order.pk)
        ).apply_async()
