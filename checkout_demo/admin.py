"""The shop in the admin: orders link to their trace; the gateway's tables are read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from checkout_demo.links import trace_path
from checkout_demo.models import (
    GatewayCall,
    GatewayCharge,
    Notification,
    Order,
    OrderLine,
    Payment,
    Product,
    Shipment,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["sku", "name", "price", "currency", "stock"]
    list_editable = ["stock"]
    search_fields = ["sku", "name"]


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    can_delete = False
    readonly_fields = ["product", "quantity", "unit_price"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PaymentInline(admin.StackedInline):
    model = Payment
    extra = 0
    can_delete = False
    readonly_fields = [
        "status",
        "amount",
        "currency",
        "idempotency_key",
        "charge_id",
        "attempts",
        "decline_code",
    ]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "status",
        "customer",
        "email",
        "total",
        "currency",
        "payment_method",
        "trace",
        "created_at",
    ]
    list_filter = ["status", "payment_method"]
    list_select_related = ["customer"]
    search_fields = ["=id", "=correlation_id", "email", "customer__username"]
    inlines = [OrderLineInline, PaymentInline]
    readonly_fields = ["trace"]

    @admin.display(description="correlation ID")
    def trace(self, order: Order) -> str:
        path = trace_path(order.correlation_id)
        if path is None:
            return order.correlation_id
        return format_html('<a href="{}">{}</a>', path, order.correlation_id)


@admin.register(Shipment)
class ShipmentAdmin(ReadOnlyAdmin):
    list_display = ["order", "carrier", "tracking_number", "created_at"]


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["order", "kind", "recipient", "subject", "sent_at"]
    list_filter = ["kind"]


@admin.register(GatewayCharge)
class GatewayChargeAdmin(ReadOnlyAdmin):
    list_display = ["charge_id", "reference", "amount", "currency", "status", "decline_code", "created_at"]
    list_filter = ["status"]
    search_fields = ["=reference", "=idempotency_key", "=charge_id"]


@admin.register(GatewayCall)
class GatewayCallAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "reference", "idempotency_key", "outcome"]
    list_filter = ["outcome"]
    search_fields = ["=reference", "=idempotency_key"]
