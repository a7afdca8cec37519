"""The OpenAPI schema describes the API as sent: inside the envelope, with the error shapes."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def content_schema(response):
    return response["content"]["application/json"]["schema"]


def test_every_operation_is_documented(schema):
    operations = {(path, method) for path, item in schema["paths"].items() for method in item}
    assert operations == {
        ("/api/ping/", "get"),
        ("/api/products/", "get"),
        ("/api/orders/", "get"),
        ("/api/orders/", "post"),
        ("/api/orders/{id}/", "get"),
        ("/api/orders/{id}/checkout/", "post"),
    }


def test_success_responses_are_wrapped_in_the_envelope(schema):
    created = content_schema(schema["paths"]["/api/orders/"]["post"]["responses"]["201"])
    assert created["properties"] == {
        "data": {"$ref": "#/components/schemas/Order"},
        "meta": {"$ref": "#/components/schemas/EnvelopeMeta"},
    }
    assert created["required"] == ["data", "meta"]
    listed = content_schema(schema["paths"]["/api/orders/"]["get"]["responses"]["200"])
    assert listed["properties"]["data"] == {"$ref": "#/components/schemas/PaginatedOrderList"}
    assert set(schema["components"]["schemas"]["PaginatedOrderList"]["properties"]) == {
        "count",
        "next",
        "previous",
        "results",
    }
    accepted = content_schema(schema["paths"]["/api/orders/{id}/checkout/"]["post"]["responses"]["202"])
    assert accepted["properties"]["data"] == {"$ref": "#/components/schemas/Order"}


def test_errors_are_described_by_the_error_envelope(schema):
    components = schema["components"]["schemas"]
    assert set(components["ErrorEnvelope"]["properties"]) == {"error", "meta"}
    assert set(components["ErrorBody"]["properties"]) == {"code", "message", "details"}
    assert set(components["EnvelopeMeta"]["properties"]) == {"correlation_id"}
    create = schema["paths"]["/api/orders/"]["post"]["responses"]
    for status in ("400", "409", "413", "415", "422", "default"):
        assert content_schema(create[status]) == {"$ref": "#/components/schemas/ErrorEnvelope"}, status
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            default = operation["responses"]["default"]
            assert content_schema(default) == {"$ref": "#/components/schemas/ErrorEnvelope"}, (path, method)


def test_the_headers_are_documented(schema):
    create = schema["paths"]["/api/orders/"]["post"]
    assert {"in": "header", "name": "Idempotency-Key", "required": True}.items() <= create["parameters"][
        0
    ].items()
    assert "Idempotent-Replayed" in create["responses"]["201"]["headers"]
    for status, response in create["responses"].items():
        assert "X-Correlation-ID" in response["headers"], status


def test_the_test_payment_methods_are_listed(schema):
    checkout = schema["components"]["schemas"]["Checkout"]["properties"]["payment_method"]
    methods = schema["components"]["schemas"]["PaymentMethodEnum"]["enum"]
    assert checkout["allOf"] == [{"$ref": "#/components/schemas/PaymentMethodEnum"}]
    assert {"pm_card_ok", "pm_card_declined", "pm_card_timeout", "pm_card_lost_response"} <= set(methods)


def test_the_docs_page_is_served(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert b"/api/schema/" in response.content
