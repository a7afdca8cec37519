"""The idempotency section's views: one POST view that writes one row, bare and guarded by ``@idempotent``
in each mode (the claim committing with the view's write, or on its own before it).

The bare view writes in autocommit, one statement and one commit, as Django runs it without
``ATOMIC_REQUESTS``; the difference to it is what the idempotency layer adds to a real write.
"""

import json

from django.db import connection
from django.http import HttpRequest, JsonResponse

from tracing_app.idempotency import idempotent

ORDERS_TABLE = "bench_idempotency_order"


def client_scope(request: HttpRequest) -> str:
    """Every benchmark request is the same API client (``IDEMPOTENCY_SCOPE``)."""
    return "bench-client"


def create_table() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {ORDERS_TABLE} "
            "(id bigserial PRIMARY KEY, sku text NOT NULL, quantity integer NOT NULL)"
        )


def delete_orders() -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {ORDERS_TABLE}")
        return cursor.rowcount


def create_order(request: HttpRequest) -> JsonResponse:
    if request.method != "POST":
        return JsonResponse({"detail": "POST only"}, status=405)
    order = json.loads(request.body or b"{}")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {ORDERS_TABLE} (sku, quantity) VALUES (%s, %s) RETURNING id",
            [order.get("sku", ""), order.get("quantity", 0)],
        )
        (order_id,) = cursor.fetchone()
    return JsonResponse({"id": order_id, "order": order, "status": "created"}, status=201)


idempotent_create_order = idempotent(create_order, mode="transaction")
lease_create_order = idempotent(create_order, mode="lease")
