"""The demo catalogue, and seeding it."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest

from checkout_demo.models import Product

SEED_PRODUCTS: tuple[tuple[str, str, str, str, int], ...] = (
    # sku, name, price, currency, stock
    ("MUG-01", "Correlation mug", "12.50", "EUR", 500),
    ("TEE-01", "Trace ID t-shirt", "24.00", "EUR", 300),
    ("STK-01", "ULID sticker pack", "3.20", "EUR", 1000),
    ("BOOK-01", "Distributed Systems Field Guide", "39.90", "EUR", 200),
    ("LAMP-01", "Limited edition lava lamp", "89.00", "EUR", 3),
)


@transaction.atomic
def seed_products() -> int:
    """Create the catalogue, or top each product's stock back up to at least its seed level.

    Existing stock above the seed level is kept, so seeding never takes away stock an order reserved.
    Returns the number of products created.
    """
    created = 0
    for sku, name, price, currency, stock in SEED_PRODUCTS:
        _, was_created = Product.objects.get_or_create(
            sku=sku, defaults={"name": name, "price": Decimal(price), "currency": currency, "stock": stock}
        )
        if was_created:
            created += 1
        else:
            Product.objects.filter(sku=sku).update(stock=Greatest(F("stock"), stock))
    return created
