"""The shop's admin pages render, link orders to their trace, and keep the ledger read-only."""

from __future__ import annotations

import pytest

from checkout_demo.models import Order
from tests.demo.conftest import make_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(catalog):
    return make_order(("MUG-01", 1), status=Order.Status.CONFIRMED)


@pytest.mark.parametrize(
    "path",
    [
        "/admin/checkout_demo/product/",
        "/admin/checkout_demo/order/",
        "/admin/checkout_demo/shipment/",
        "/admin/checkout_demo/notification/",
        "/admin/checkout_demo/gatewaycharge/",
        "/admin/checkout_demo/gatewaycall/",
    ],
)
def test_the_lists_render(admin_client, order, path):
    assert admin_client.get(path).status_code == 200


def test_an_order_links_to_its_trace(admin_client, order):
    listing = admin_client.get(f"/admin/checkout_demo/order/?q={order.correlation_id}").content.decode()
    assert f'href="/admin/tracing_app/trace/{order.correlation_id}/"' in listing
    page = admin_client.get(f"/admin/checkout_demo/order/{order.pk}/change/")
    assert page.status_code == 200
    assert order.correlation_id in page.content.decode()


def test_orders_cannot_be_edited_in_the_admin(admin_client, order):
    response = admin_client.post(f"/admin/checkout_demo/order/{order.pk}/change/", {"status": "pending"})
    assert response.status_code == 403
    assert Order.objects.get().status == Order.Status.CONFIRMED
    assert admin_client.get("/admin/checkout_demo/order/add/").status_code == 403


def test_staff_see_every_customers_orders_with_the_customer(admin_client, customers, catalog):
    mine, theirs = make_order(("MUG-01", 1), customer="ada"), make_order(("MUG-01", 1), customer="grace")
    listing = admin_client.get("/admin/checkout_demo/order/").content.decode()
    for order, customer in ((mine, "ada"), (theirs, "grace")):
        row = listing[listing.index(f"/admin/checkout_demo/order/{order.pk}/change/") :].split("</tr>")[0]
        assert f">{customer}</td>" in row.split("field-customer", 1)[1]
    assert "grace" in admin_client.get("/admin/checkout_demo/order/?q=grace").content.decode()
