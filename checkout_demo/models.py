"""The shop's domain: products with stock, orders with lines, payments, shipments and notifications.

``GatewayCharge`` and ``GatewayCall`` are not the shop's data: they are the simulated payment provider's
own ledger and request log (see :mod:`checkout_demo.gateway`), kept here so the demo can show what the
provider saw next to what the shop believes.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from checkout_demo.money import SUPPORTED_CURRENCIES, Money

MONEY = {"max_digits": 12, "decimal_places": 2}
CURRENCY_CHOICES = [(code, code) for code in SUPPORTED_CURRENCIES]


class Product(models.Model):
    sku = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=100)
    price = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    stock = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["sku"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gt=0), name="product_price_positive"),
            models.CheckConstraint(condition=Q(stock__gte=0), name="product_stock_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} ({self.stock} in stock)"

    @property
    def unit_price(self) -> Money:
        return Money(self.price, self.currency)


class Order(models.Model):
    """An order and where its checkout saga stands.

    pending -> processing (checkout started) -> reserved (stock held) -> paid -> confirmed;
    any step before ``paid`` can end in ``failed``, with the stock it held released.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending (awaiting checkout)"
        PROCESSING = "processing", "Checkout started"
        RESERVED = "reserved", "Stock reserved"
        PAID = "paid", "Paid"
        CONFIRMED = "confirmed", "Confirmed"
        FAILED = "failed", "Failed"

    TERMINAL = frozenset({Status.CONFIRMED, Status.FAILED})

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # Who placed it: the API shows a customer their own orders only. Empty for orders from before
    # customers existed, which only staff see (in the admin).
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="orders"
    )
    email = models.EmailField()
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    total = models.DecimalField(**MONEY)
    payment_method = models.CharField(max_length=40, blank=True)
    # The transaction the order belongs to: the creating request's ID, under which the checkout runs.
    correlation_id = models.CharField(max_length=128, db_index=True)
    failure_code = models.CharField(max_length=40, blank=True)
    failure_message = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Order {self.pk} ({self.status})"


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField()
    # The price when the order was placed: later price changes do not alter an order.
    unit_price = models.DecimalField(**MONEY)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="order_line_quantity_positive"),
            models.UniqueConstraint(fields=["order", "product"], name="order_line_one_per_product"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product_id}"

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity


class Payment(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        CAPTURED = "captured", "Captured"
        DECLINED = "declined", "Declined"
        FAILED = "failed", "Failed (no answer from the gateway)"

    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="payment")
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # Sent with every gateway call for this payment, so the gateway deduplicates retries itself.
    idempotency_key = models.CharField(max_length=64, unique=True)
    charge_id = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    decline_code = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Payment for order {self.order_id} ({self.status})"


class Shipment(models.Model):
    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="shipment")
    carrier = models.CharField(max_length=40)
    tracking_number = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.carrier} {self.tracking_number}"


class Notification(models.Model):
    class Kind(models.TextChoices):
        CONFIRMED = "order_confirmed", "Order confirmed"
        FAILED = "order_failed", "Order failed"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    recipient = models.EmailField()
    subject = models.CharField(max_length=200)
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["sent_at", "id"]
        # A redelivered notify task finds its notification already sent.
        constraints = [models.UniqueConstraint(fields=["order", "kind"], name="notification_once_per_kind")]

    def __str__(self) -> str:
        return f"{self.kind} to {self.recipient}"


class GatewayCharge(models.Model):
    """The simulated provider's ledger: one row per idempotency key it has processed."""

    class Status(models.TextChoices):
        SUCCEEDED = "succeeded", "Succeeded"
        DECLINED = "declined", "Declined"

    charge_id = models.CharField(max_length=64, unique=True)
    idempotency_key = models.CharField(max_length=64, unique=True)
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3)
    payment_method = models.CharField(max_length=40)
    status = models.CharField(max_length=16, choices=Status.choices)
    decline_code = models.CharField(max_length=40, blank=True)
    # The caller's reference (the shop's order ID), as a provider's "metadata" field holds it.
    reference = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.charge_id} {self.amount} {self.currency} ({self.status})"


class GatewayCall(models.Model):
    """The simulated provider's request log: every call, including those whose answer never arrived."""

    class Outcome(models.TextChoices):
        CHARGED = "charged", "Charged"
        REPLAYED = "replayed", "Replayed an earlier charge"
        DECLINED = "declined", "Declined"
        TIMEOUT = "timeout", "Timed out before reaching the provider"
        RESPONSE_LOST = "response_lost", "Charged, but the response was lost"
        REJECTED = "rejected", "Rejected (key reused with other parameters)"

    idempotency_key = models.CharField(max_length=64, db_index=True)
    reference = models.CharField(max_length=64, db_index=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.idempotency_key}: {self.outcome}"
