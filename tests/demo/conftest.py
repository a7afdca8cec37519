"""Fixtures for the checkout demo's tests."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.conf import settings

# Before the demo's imports, which cannot load under the library's settings (no checkout_demo there).
if "checkout_demo" not in settings.INSTALLED_APPS:
    pytest.exit("tests/demo runs under the demo's settings: --ds=settings.test (see ./dev)", returncode=4)

from django.contrib.auth.models import User
from rest_framework.test import APIClient

from checkout_demo.catalog import seed_products
from checkout_demo.customers import ensure_customers
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
from tracing_app.ids import new_id


@pytest.fixture
def catalog(db):
    seed_products()
    return {product.sku: product for product in Product.objects.all()}


@pytest.fixture
def customers(db, tmp_path):
    """The demo customers' API tokens, username -> key, as ``rundemo`` creates them."""
    return ensure_customers(tmp_path)


def client_of(token: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return api


@pytest.fixture
def api(customers):
    """The API as the customer "ada"."""
    return client_of(customers["ada"])


def make_order(
    *lines: tuple[str, int],
    status: str = Order.Status.PENDING,
    method: str = "pm_card_ok",
    customer: str = "ada",
) -> Order:
    """An order of ``customer`` (a username) for ``(sku, quantity)`` lines, written straight to the
    database."""
    products = [(Product.objects.get(sku=sku), quantity) for sku, quantity in lines]
    order = Order.objects.create(
        customer=User.objects.filter(username=customer).first(),
        email="buyer@example.com",
        currency=products[0][0].currency,
        total=sum((p.price * q for p, q in products), Decimal(0)),
        correlation_id=new_id(),
        status=status,
        payment_method=method,
    )
    OrderLine.objects.bulk_create(
        OrderLine(order=order, product=p, quantity=q, unit_price=p.price) for p, q in products
    )
    return order


def snapshot() -> dict[str, object]:
    """Everything the shop and the gateway hold, to show that a refused request changed nothing."""
    return {
        "stock": dict(Product.objects.values_list("sku", "stock")),
        "rows": [
            model.objects.count()
            for model in (Order, OrderLine, Payment, Shipment, Notification, GatewayCharge, GatewayCall)
        ],
    }
