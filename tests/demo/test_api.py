"""The order API through the whole middleware stack: envelope, idempotency, refusals that change nothing."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from checkout_demo.models import Order, Product
from tests.demo.conftest import client_of, make_order, snapshot
from tracing_app.idempotency.models import IdempotencyRecord

ORDER = {
    "email": "ada@example.com",
    "lines": [{"product": "MUG-01", "quantity": 2}, {"product": "STK-01", "quantity": 1}],
}


def create(api, body=ORDER, key=None, **extra):
    headers = {"HTTP_IDEMPOTENCY_KEY": key or str(uuid.uuid4()), **extra}
    return api.post("/api/orders/", body, format="json", **headers)


def assert_envelope(response):
    body = response.json()
    assert body["meta"] == {"correlation_id": response["X-Correlation-ID"]}
    return body


def assert_error(response, status, code, message_part):
    assert response.status_code == status, response.content
    body = assert_envelope(response)
    assert set(body) == {"error", "meta"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert any(message_part in text for text in strings(body["error"])), body["error"]
    return body["error"]


def strings(value):
    """Every string in a JSON value: the message and each field error in the details."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def test_create_an_order(api, catalog):
    response = create(api)
    assert response.status_code == 201
    order = assert_envelope(response)["data"]
    assert response["Location"] == f"/api/orders/{order['id']}/"
    assert order["status"] == "pending"
    assert order["correlation_id"] == response["X-Correlation-ID"]
    assert (order["total"], order["currency"]) == ("28.20", "EUR")
    assert [(line["product"], line["quantity"], line["line_total"]) for line in order["lines"]] == [
        ("MUG-01", 2, "25.00"),
        ("STK-01", 1, "3.20"),
    ]
    assert order["payment"] is order["shipment"] is order["failure"] is None
    assert order["links"]["trace"] in (None, f"/admin/tracing_app/trace/{order['correlation_id']}/")
    assert Order.objects.get().correlation_id == order["correlation_id"]


def test_a_repeated_post_with_the_same_key_replays_the_first_order(api, catalog):
    key = str(uuid.uuid4())
    first = create(api, key=key)
    again = create(api, key=key)
    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert again["X-Correlation-ID"] == first["X-Correlation-ID"]
    assert Order.objects.count() == 1


def test_the_same_key_with_another_body_is_refused(api, catalog):
    key = str(uuid.uuid4())
    create(api, key=key)
    before = snapshot()
    other = {**ORDER, "email": "someone@example.com"}
    assert_error(create(api, other, key=key), 422, "idempotency_key_reused", "different request")
    assert snapshot() == before


def test_an_order_needs_an_idempotency_key(api, catalog):
    before = snapshot()
    response = api.post("/api/orders/", ORDER, format="json")
    assert_error(response, 400, "idempotency_key_missing", "Idempotency-Key")
    assert snapshot() == before


MEGABYTE = b'{"email": "a@example.com", "lines": [], "padding": "' + b"x" * (1 << 20) + b'"}'


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code", "message"),
    [
        (
            {"email": "a@example.com", "lines": [{"product": "NOPE-1", "quantity": 1}]},
            "json",
            400,
            "invalid",
            "Unknown product 'NOPE-1'.",
        ),
        (
            {"email": "a@example.com", "lines": [{"product": "MUG-01", "quantity": -2}]},
            "json",
            400,
            "invalid",
            "greater than or equal to 1",
        ),
        (
            {"email": "a@example.com", "lines": [{"product": "LAMP-01", "quantity": 4}]},
            "json",
            400,
            "invalid",
            "Only 3 of LAMP-01 in stock; asked for 4.",
        ),
        (
            {"email": "a@example.com", "lines": [{"product": "MUG-01", "quantity": 1}] * 2},
            "json",
            400,
            "invalid",
            "MUG-01 appears in more than one line",
        ),
        ({"email": "a@example.com", "lines": []}, "json", 400, "invalid", "This list may not be empty."),
        (
            {"email": "not-an-address", "lines": [{"product": "MUG-01", "quantity": 1}]},
            "json",
            400,
            "invalid",
            "email",
        ),
        (
            b'{"email": "a@example.com", "lines": [',
            "application/json",
            400,
            "parse_error",
            "JSON parse error",
        ),
        (b"[1, 2, 3]", "application/json", 400, "invalid", "Expected a dictionary"),
        (
            b"email=a@example.com",
            "application/x-www-form-urlencoded",
            415,
            "unsupported_media_type",
            "Unsupported",
        ),
        (b"hello", "text/plain", 415, "unsupported_media_type", 'Unsupported media type "text/plain"'),
        (MEGABYTE, "application/json", 413, "payload_too_large", "the limit is 65536 bytes"),
    ],
    ids=[
        "unknown-product",
        "negative-quantity",
        "above-stock",
        "duplicate-line",
        "no-lines",
        "bad-email",
        "malformed-json",
        "not-an-object",
        "form-encoded",
        "text-plain",
        "one-megabyte",
    ],
)
def test_bad_input_gets_the_error_envelope_and_changes_nothing(
    api, catalog, body, content_type, status, code, message
):
    before = snapshot()
    headers = {"HTTP_IDEMPOTENCY_KEY": str(uuid.uuid4())}
    if content_type == "json":
        response = api.post("/api/orders/", body, format="json", **headers)
    else:
        response = api.generic("POST", "/api/orders/", body, content_type=content_type, **headers)
    error = assert_error(response, status, code, message)
    assert error["message"]
    assert snapshot() == before


def test_field_errors_point_at_the_line_and_field(api, catalog):
    body = {
        "email": "a@example.com",
        "lines": [{"product": "MUG-01", "quantity": 1}, {"product": "NOPE-1", "quantity": 1}],
    }
    error = assert_error(create(api, body), 400, "invalid", "Unknown product")
    assert error["details"] == {"lines": [{}, {"product": ["Unknown product 'NOPE-1'."]}]}


def test_a_refused_request_is_not_replayed_as_a_success(api, catalog):
    key = str(uuid.uuid4())
    bad = {"email": "a@example.com", "lines": [{"product": "NOPE-1", "quantity": 1}]}
    first = create(api, bad, key=key)
    again = create(api, bad, key=key)
    assert first.status_code == again.status_code == 400
    assert not Order.objects.exists()


def test_get_an_order(api, catalog):
    created = assert_envelope(create(api))["data"]
    response = api.get(f"/api/orders/{created['id']}/")
    assert response.status_code == 200
    order = assert_envelope(response)["data"]
    assert order == created
    assert response["X-Correlation-ID"] != order["correlation_id"]  # each request has its own


def test_an_unknown_order_is_a_404_in_the_envelope(api, catalog):
    assert_error(api.get("/api/orders/999999/"), 404, "not_found", "No Order matches")


def test_orders_are_listed_newest_first_and_paginated(api, catalog):
    ids = [assert_envelope(create(api))["data"]["id"] for _ in range(3)]
    page = assert_envelope(api.get("/api/orders/?page_size=2"))["data"]
    assert page["count"] == 3
    assert [o["id"] for o in page["results"]] == ids[::-1][:2]
    assert page["next"].endswith("/api/orders/?page=2&page_size=2")
    second = assert_envelope(api.get("/api/orders/?page=2&page_size=2"))["data"]
    assert [o["id"] for o in second["results"]] == ids[:1]
    assert_error(api.get("/api/orders/?page=9"), 404, "not_found", "Invalid page")


def test_products_show_their_stock(api, catalog):
    products = assert_envelope(api.get("/api/products/"))["data"]
    assert {
        "sku": "LAMP-01",
        "name": "Limited edition lava lamp",
        "price": "89.00",
        "currency": "EUR",
        "stock": 3,
    } in products


def test_checkout_starts_the_saga_after_the_commit(api, catalog, django_capture_on_commit_callbacks):
    order = make_order(("MUG-01", 1))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api.post(
            f"/api/orders/{order.pk}/checkout/", {"payment_method": "pm_card_declined"}, format="json"
        )
    assert response.status_code == 202
    data = assert_envelope(response)["data"]
    assert (data["status"], data["payment_method"]) == ("processing", "pm_card_declined")
    assert len(callbacks) == 1  # the saga's publication, waiting for the commit


def test_checkout_starts_once(api, catalog, django_capture_on_commit_callbacks):
    order = make_order(("MUG-01", 1))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        api.post(f"/api/orders/{order.pk}/checkout/", {"payment_method": "pm_card_ok"}, format="json")
        again = api.post(f"/api/orders/{order.pk}/checkout/", {"payment_method": "pm_card_ok"}, format="json")
    assert_error(again, 409, "checkout_not_allowed", "Checkout already started; the order is processing.")
    assert len(callbacks) == 1


@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        ({"payment_method": "pm_card_gold"}, 400, "invalid", '"pm_card_gold" is not a valid choice.'),
        ({}, 400, "invalid", "This field is required."),
        ("not json", 400, "parse_error", "JSON parse error"),
    ],
)
def test_checkout_refuses_bad_input_and_changes_nothing(api, catalog, body, status, code, message):
    order = make_order(("MUG-01", 1))
    before = snapshot()
    if isinstance(body, str):
        response = api.generic(
            "POST", f"/api/orders/{order.pk}/checkout/", body, content_type="application/json"
        )
    else:
        response = api.post(f"/api/orders/{order.pk}/checkout/", body, format="json")
    assert_error(response, status, code, message)
    assert snapshot() == before
    assert Order.objects.get().status == "pending"


def test_checkout_of_an_unknown_order_is_a_404(api, catalog):
    response = api.post("/api/orders/424242/checkout/", {"payment_method": "pm_card_ok"}, format="json")
    assert_error(response, 404, "not_found", "No Order matches")


def test_the_idempotency_record_keeps_the_order_correlation_id(api, catalog):
    response = create(api)
    record = IdempotencyRecord.objects.get()
    assert record.correlation_id == response["X-Correlation-ID"]
    assert Product.objects.get(sku="MUG-01").stock == 500  # creating an order reserves nothing yet


def test_the_order_api_is_for_customers_only(catalog):
    anonymous = APIClient()
    assert_error(create(anonymous), 401, "not_authenticated", "credentials were not provided")
    assert_error(anonymous.get("/api/orders/"), 401, "not_authenticated", "credentials were not provided")
    assert assert_envelope(anonymous.get("/api/products/"))["data"], "the catalogue stays public"
    assert not Order.objects.exists()


def test_a_customer_sees_only_their_own_orders(api, customers, catalog):
    mine = assert_envelope(create(api))["data"]
    grace = client_of(customers["grace"])
    theirs = assert_envelope(create(grace, {**ORDER, "email": "grace@example.com"}))["data"]
    assert [order["id"] for order in assert_envelope(api.get("/api/orders/"))["data"]["results"]] == [
        mine["id"]
    ]
    assert [o["id"] for o in assert_envelope(grace.get("/api/orders/"))["data"]["results"]] == [theirs["id"]]
    assert_error(grace.get(f"/api/orders/{mine['id']}/"), 404, "not_found", "No Order matches")
    refused = grace.post(
        f"/api/orders/{mine['id']}/checkout/", {"payment_method": "pm_card_ok"}, format="json"
    )
    assert_error(refused, 404, "not_found", "No Order matches")
    assert Order.objects.get(pk=mine["id"]).status == Order.Status.PENDING
    assert Order.objects.get(pk=mine["id"]).customer.username == "ada"


def test_customers_using_the_same_key_get_their_own_orders(api, customers, catalog):
    """Idempotency keys are kept per customer: the same key and body make one order each."""
    grace = client_of(customers["grace"])
    mine = create(api, key="same-key")
    theirs = create(grace, key="same-key")
    assert mine.status_code == theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs
    assert theirs.json()["data"]["id"] != mine.json()["data"]["id"]
    assert create(api, key="same-key")["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 2
