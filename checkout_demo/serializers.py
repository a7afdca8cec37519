"""What the order API reads and writes."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from checkout_demo.gateway import PAYMENT_METHODS
from checkout_demo.links import trace_path
from checkout_demo.models import Order, OrderLine, Payment, Product, Shipment
from checkout_demo.money import Money
from tracing_app.context import get_correlation_id

MAX_LINES = 20
MAX_QUANTITY = 1000


class ProductSerializer(serializers.ModelSerializer):
    class Meta:
        model = Product
        fields = ["sku", "name", "price", "currency", "stock"]


class OrderLineInputSerializer(serializers.Serializer):
    product = serializers.CharField(max_length=32, help_text="The product's SKU, e.g. MUG-01.")
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY)


class OrderCreateSerializer(serializers.Serializer):
    """``{"email": ..., "lines": [{"product": "<sku>", "quantity": n}, ...]}``."""

    email = serializers.EmailField()
    lines = OrderLineInputSerializer(many=True, allow_empty=False, max_length=MAX_LINES)

    def validate_lines(self, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Every product exists, appears once and has the quantity in stock; all share one currency.

        Stock is checked here so a client hears about it at once; the reservation at checkout is what
        actually holds stock, and it can still fail if others bought it meanwhile.
        """
        skus = [line["product"] for line in lines]
        products = Product.objects.in_bulk(skus, field_name="sku")
        errors: list[dict[str, list[str]]] = []
        seen: set[str] = set()
        for line in lines:
            sku, quantity = line["product"], line["quantity"]
            product = products.get(sku)
            if product is None:
                errors.append({"product": [f"Unknown product {sku!r}."]})
            elif sku in seen:
                errors.append({"product": [f"{sku} appears in more than one line; order it in one line."]})
            elif quantity > product.stock:
                errors.append(
                    {"quantity": [f"Only {product.stock} of {sku} in stock; asked for {quantity}."]}
                )
            else:
                errors.append({})
            seen.add(sku)
        if any(errors):
            raise serializers.ValidationError(errors)
        currencies = {products[sku].currency for sku in skus}
        if len(currencies) > 1:
            raise serializers.ValidationError(
                f"All products of an order must share one currency: {currencies}."
            )
        return [{"product": products[line["product"]], "quantity": line["quantity"]} for line in lines]

    @transaction.atomic
    def create(self, validated_data: dict[str, Any]) -> Order:
        lines = validated_data["lines"]
        currency = lines[0]["product"].currency
        total = Money.zero(currency)
        for line in lines:
            total = total + line["product"].unit_price * line["quantity"]
        order = Order.objects.create(
            customer=validated_data.get("customer"),
            email=validated_data["email"],
            currency=currency,
            total=total.amount,
            correlation_id=get_correlation_id() or "",
        )
        OrderLine.objects.bulk_create(
            OrderLine(
                order=order,
                product=line["product"],
                quantity=line["quantity"],
                unit_price=line["product"].price,
            )
            for line in lines
        )
        return order


class CheckoutSerializer(serializers.Serializer):
    payment_method = serializers.ChoiceField(
        choices=PAYMENT_METHODS,
        help_text="A test payment method; each one makes the simulated gateway behave differently.",
    )


class OrderLineSerializer(serializers.ModelSerializer):
    product = serializers.CharField(source="product.sku")
    name = serializers.CharField(source="product.name")
    line_total = serializers.DecimalField(max_digits=14, decimal_places=2, read_only=True)

    class Meta:
        model = OrderLine
        fields = ["product", "name", "quantity", "unit_price", "line_total"]


class PaymentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Payment
        fields = ["status", "amount", "currency", "charge_id", "attempts", "decline_code"]


class ShipmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Shipment
        fields = ["carrier", "tracking_number"]


class FailureSerializer(serializers.Serializer):
    code = serializers.CharField(source="failure_code")
    message = serializers.CharField(source="failure_message")


class OrderLinksSerializer(serializers.Serializer):
    self = serializers.CharField()
    checkout = serializers.CharField()
    trace = serializers.CharField(allow_null=True, help_text="The admin page of the order's transaction.")


class OrderSerializer(serializers.ModelSerializer):
    lines = OrderLineSerializer(many=True, read_only=True)
    payment = PaymentSerializer(read_only=True, allow_null=True)
    shipment = ShipmentSerializer(read_only=True, allow_null=True)
    failure = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()

    class Meta:
        model = Order
        fields = [
            "id",
            "status",
            "correlation_id",
            "email",
            "currency",
            "total",
            "payment_method",
            "lines",
            "payment",
            "shipment",
            "failure",
            "links",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(FailureSerializer(allow_null=True))
    def get_failure(self, order: Order) -> dict[str, Any] | None:
        return FailureSerializer(order).data if order.failure_code else None

    @extend_schema_field(OrderLinksSerializer)
    def get_links(self, order: Order) -> dict[str, str | None]:
        return {
            "self": reverse("checkout_demo:order-detail", args=[order.pk]),
            "checkout": reverse("checkout_demo:order-checkout", args=[order.pk]),
            "trace": trace_path(order.correlation_id),
        }
