"""The checkout saga's steps and its compensation, as plain functions over the database.

Each step moves the order from one status to the next with a conditional UPDATE (``WHERE status = ...``),
so running a step twice (a redelivered or retried task) does nothing the second time, and two concurrent
runs cannot both pass. A step that cannot succeed raises :class:`CheckoutFailed`; the task layer
(:mod:`checkout_demo.tasks`) then runs :func:`compensate`, which undoes what the order holds.

Remote calls (the payment gateway) happen outside database transactions; only their outcome is written
inside one. Follow-up work (the saga's chain, notifications, compensation) is published inside the
transaction that decided it, through the outbox: it is sent if and once that transaction commits, even
when the broker is down at that moment.

Infrastructure faults (the database or the broker away for a while, a worker killed) never end an order:
the task layer retries them, and :func:`stuck_orders` / :func:`resume` let a reconciler drive an order
that stopped half-way on from the state it is in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from checkout_demo.gateway import CardDeclined, Charge, PaymentGateway
from checkout_demo.models import Notification, Order, Payment, Product, Shipment
from tracing_app.ids import derive_id

logger = logging.getLogger("checkout_demo.saga")

Status = Order.Status


class CheckoutFailed(Exception):
    """A step failed for a business reason (out of stock, declined): the saga stops and compensates."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # Celery pickles a failed task's exception; the default would call CheckoutFailed(message).
        return type(self), (self.code, self.message)


class CheckoutNotAllowed(Exception):
    """Checkout was asked for an order that is not pending (already started, finished or failed)."""

    def __init__(self, status: str) -> None:
        super().__init__(f"checkout already started; the order is {status}")
        self.status = status

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return type(self), (self.status,)


def _advance(order_id: int, source: str, target: str, **changes: object) -> bool:
    """Move the order from ``source`` to ``target``; False when it was not in ``source``."""
    return bool(
        Order.objects.filter(pk=order_id, status=source).update(
            status=target, updated_at=timezone.now(), **changes
        )
    )


def start_checkout(order_id: int, payment_method: str, publish: Callable[[Order], None]) -> Order:
    """Mark the order as processing and ``publish(order)`` in the same transaction (through the outbox)."""
    with transaction.atomic():
        if not _advance(order_id, Status.PENDING, Status.PROCESSING, payment_method=payment_method):
            raise CheckoutNotAllowed(Order.objects.values_list("status", flat=True).get(pk=order_id))
        order = Order.objects.get(pk=order_id)
        publish(order)
    logger.info("Checkout started for order %s with %s", order_id, payment_method)
    return order


def reserve_stock(order_id: int) -> None:
    """Take the order's quantities out of stock, all lines or none."""
    with transaction.atomic():
        if not _advance(order_id, Status.PROCESSING, Status.RESERVED):
            logger.info("Order %s is past stock reservation; nothing to do", order_id)
            return
        # Products in a fixed order so two concurrent reservations never wait on each other's rows.
        for line in Order.objects.get(pk=order_id).lines.select_related("product").order_by("product_id"):
            taken = Product.objects.filter(pk=line.product_id, stock__gte=line.quantity).update(
                stock=F("stock") - line.quantity
            )
            if not taken:
                left = Product.objects.values_list("stock", flat=True).get(pk=line.product_id)
                raise CheckoutFailed(
                    "out_of_stock",
                    f"Only {left} of {line.product.sku} left; the order needs {line.quantity}.",
                )
    logger.info("Stock reserved for order %s", order_id)


def charge_key(order: Order) -> str:
    """The payment's idempotency key: the same for every attempt, so the gateway charges once."""
    return derive_id("checkout_demo.charge", order.correlation_id, order.pk)


def prepare_payment(order_id: int) -> Payment | None:
    """The order's payment, created on first use and counting this attempt; None if not awaiting payment."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if order.status != Status.RESERVED:
            logger.info("Order %s is %s; no charge", order_id, order.status)
            return None
        payment, _ = Payment.objects.get_or_create(
            order=order,
            defaults={
                "amount": order.total,
                "currency": order.currency,
                "idempotency_key": charge_key(order),
            },
        )
        Payment.objects.filter(pk=payment.pk).update(attempts=F("attempts") + 1)
    payment.refresh_from_db()
    return payment


def call_gateway(payment: Payment, gateway: PaymentGateway | None = None) -> Charge:
    """Charge the payment (outside any transaction). Declines are recorded and raise CheckoutFailed."""
    gateway = gateway or PaymentGateway()
    try:
        return gateway.charge(
            amount=payment.amount,
            currency=payment.currency,
            payment_method=payment.order.payment_method,
            idempotency_key=payment.idempotency_key,
            reference=f"order-{payment.order_id}",
        )
    except CardDeclined as exc:
        Payment.objects.filter(pk=payment.pk).update(
            status=Payment.Status.DECLINED, decline_code=exc.code, charge_id=exc.charge_id
        )
        raise CheckoutFailed("payment_declined", f"The card was declined ({exc.code}).") from exc


def record_charge(payment: Payment, charge: Charge) -> None:
    """Write the captured charge and move the order to paid, in one transaction."""
    with transaction.atomic():
        Payment.objects.filter(pk=payment.pk).update(
            status=Payment.Status.CAPTURED, charge_id=charge.charge_id
        )
        _advance(payment.order_id, Status.RESERVED, Status.PAID)
    logger.info(
        "Charged %s %s for order %s (%s%s)",
        charge.amount,
        charge.currency,
        payment.order_id,
        charge.charge_id,
        ", replayed by the gateway" if charge.replayed else "",
    )


def confirm(order_id: int, notify: Callable[[int, str], None]) -> None:
    """Book the shipment and confirm the order; ``notify(order_id, kind)`` is queued in that transaction."""
    with transaction.atomic():
        if not _advance(order_id, Status.PAID, Status.CONFIRMED):
            logger.info("Order %s is not awaiting confirmation; nothing to do", order_id)
            return
        order = Order.objects.get(pk=order_id)
        Shipment.objects.create(
            order=order,
            carrier="Demo Post",
            tracking_number="DP" + derive_id("checkout_demo.shipment", order.correlation_id, order.pk)[:16],
        )
        notify(order_id, Notification.Kind.CONFIRMED)
    logger.info("Order %s confirmed", order_id)


def compensate(order_id: int, code: str, message: str, notify: Callable[[int, str], None]) -> bool:
    """Release what the order holds and mark it failed; False if it had already ended."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if order.status in Order.TERMINAL:
            logger.info("Order %s already %s; no compensation", order_id, order.status)
            return False
        if order.status == Status.PAID:
            logger.error("Order %s failed after payment was captured; the charge needs a refund", order_id)
        if order.status in (Status.RESERVED, Status.PAID):
            for line in order.lines.order_by("product_id"):
                Product.objects.filter(pk=line.product_id).update(stock=F("stock") + line.quantity)
        Payment.objects.filter(order=order, status=Payment.Status.PENDING).update(
            status=Payment.Status.FAILED
        )
        held = order.status
        _advance(order_id, held, Status.FAILED, failure_code=code, failure_message=message[:300])
        notify(order_id, Notification.Kind.FAILED)
    logger.warning("Order %s failed (%s: %s); compensated from %s", order_id, code, message, held)
    return True


def send_notification(order_id: int, kind: str) -> bool:
    """Record the customer e-mail for ``kind`` once; False when it was already sent."""
    order = Order.objects.get(pk=order_id)
    subject = {
        Notification.Kind.CONFIRMED: f"Your order {order_id} is confirmed",
        Notification.Kind.FAILED: f"Your order {order_id} could not be completed",
    }[Notification.Kind(kind)]
    _, created = Notification.objects.get_or_create(
        order=order, kind=kind, defaults={"recipient": order.email, "subject": subject}
    )
    if created:
        logger.info("Sent %r to the customer of order %s", subject, order_id)
    return created


#: What an order stopped in, and the steps that take it on from there.
RESUMABLE = (Status.PROCESSING, Status.RESERVED, Status.PAID)


def stuck_orders(older_than: timedelta, limit: int) -> list[Order]:
    """Orders in a non-final checkout state that have not moved for ``older_than``, oldest first."""
    return list(
        Order.objects.filter(status__in=RESUMABLE, updated_at__lt=timezone.now() - older_than).order_by(
            "updated_at", "pk"
        )[:limit]
    )


def resume(order: Order, publish: Callable[[Order], None]) -> bool:
    """Claim a stuck order for one resumption and ``publish(order)`` its remaining steps, in one transaction.

    The claim moves ``updated_at`` only if the order is still as it was read, so two reconcilers (or a
    step finishing meanwhile) never both resume it; the next deadline starts from the resumption.
    """
    with transaction.atomic():
        claimed = Order.objects.filter(pk=order.pk, status=order.status, updated_at=order.updated_at).update(
            updated_at=timezone.now()
        )
        if not claimed:
            return False
        publish(order)
    logger.warning("Order %s was stuck in %s; resumed", order.pk, order.status)
    return True
