import html
import json
import re

import pytest
from django.test import override_settings

from tracing_app.conf import app_settings

pytestmark = pytest.mark.urls("tests.core.urls")
ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")


def body_and_id(response):
    body = json.loads(response.content)
    cid = response["X-Correlation-ID"]
    assert ULID.fullmatch(cid)
    assert body["meta"] == {"correlation_id": cid}
    return body


def test_success_is_wrapped_in_data(client):
    body = body_and_id(client.get("/api/order/"))
    assert body == {"data": {"sku": "A1", "quantity": 2}, "meta": body["meta"]}


def test_created(client):
    response = client.post("/api/order/", {"sku": "B2", "quantity": 3}, content_type="application/json")
    assert response.status_code == 201
    assert body_and_id(response)["data"] == {"sku": "B2", "quantity": 3}


def test_validation_error_keeps_field_details(client):
    response = client.post("/api/order/", {"quantity": 0}, content_type="application/json")
    assert response.status_code == 400
    error = body_and_id(response)["error"]
    assert error["code"] == "invalid"
    assert error["message"] == "Invalid input."
    assert error["details"]["sku"] == ["This field is required."]
    assert "greater than or equal to 1" in error["details"]["quantity"][0]


def test_malformed_json(client):
    response = client.post("/api/order/", "{not json", content_type="application/json")
    assert response.status_code == 400
    error = body_and_id(response)["error"]
    assert error["code"] == "parse_error"
    assert "JSON parse error" in error["message"]


def test_method_not_allowed(client):
    response = client.put("/api/order/", {}, content_type="application/json")
    assert response.status_code == 405
    assert body_and_id(response)["error"]["code"] == "method_not_allowed"


def test_not_found_from_the_view(client):
    response = client.get("/api/missing/")
    assert response.status_code == 404
    assert body_and_id(response)["error"] == {
        "code": "not_found",
        "message": "No such order.",
        "details": None,
    }


def test_unhandled_exception_gets_the_envelope_from_handler500(client):
    client.raise_request_exception = False
    response = client.get("/api/boom/", headers={"Accept": "application/json"})
    assert response.status_code == 500
    error = body_and_id(response)["error"]
    assert error["code"] == "server_error"
    assert "api boom" not in response.content.decode()


def test_error_status_returned_without_raising(client):
    response = client.get("/api/manual-error/")
    assert response.status_code == 429
    assert body_and_id(response)["error"] == {
        "code": "too_many_requests",
        "message": "Too Many Requests.",
        "details": {"reason": "quota"},
    }


def test_no_content_stays_empty(client):
    response = client.delete("/api/delete/")
    assert response.status_code == 204
    assert response.content == b""


def test_pagination_stays_intact_inside_data(client):
    data = body_and_id(client.get("/api/numbers/?page=2"))["data"]
    assert data["count"] == 5
    assert data["results"] == [{"n": 2}, {"n": 3}]
    assert data["next"].endswith("page=3")
    assert data["previous"].endswith("/api/numbers/")


def test_a_view_can_opt_out(client):
    response = client.get("/api/raw/")
    assert json.loads(response.content) == {"raw": True}
    assert ULID.fullmatch(response["X-Correlation-ID"])


def test_plain_django_views_are_untouched(client):
    response = client.get("/plain/")
    assert set(response.json()) == {"correlation_id"}


def with_project_handler():
    return override_settings(
        TRACING_APP={**app_settings.user_settings(), "DRF_EXCEPTION_HANDLER": "tests.core.handlers.wrapping"}
    )


def test_a_project_handler_is_wrapped_once_and_drf_codes_survive(client):
    with with_project_handler():
        response = client.post("/api/order/", {"quantity": 0}, content_type="application/json")
    assert response.status_code == 400
    error = body_and_id(response)["error"]
    assert error["code"] == "invalid"
    assert error["message"] == "Invalid input."
    assert error["details"]["ok"] is False
    assert error["details"]["status_code"] == 400
    assert error["details"]["errors"]["sku"] == ["This field is required."]
    assert "error" not in error["details"], "wrapped once"


def test_a_project_handlers_own_code_and_message_become_the_envelopes(client):
    with with_project_handler():
        response = client.get("/api/quota/")
    assert response.status_code == 429
    assert body_and_id(response)["error"] == {
        "code": "quota_exceeded",
        "message": "Slow down.",
        "details": {"limit": 5},
    }


def test_the_browsable_api_stays_and_shows_the_envelope(client):
    page = client.get("/api/browsable/", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")
    shown = html.unescape(page.content.decode())
    assert '"data": {' in shown
    assert f'"correlation_id": "{page["X-Correlation-ID"]}"' in shown
    assert body_and_id(client.get("/api/browsable/", headers={"Accept": "application/json"}))["data"]


def test_the_browsable_api_page_in_chromium(live_server, chromium):
    chromium.get(f"{live_server.url}/api/browsable/")
    shown = chromium.find_element("css selector", ".response-info pre").text
    body = json.loads(shown[shown.index("{") :])
    assert body["data"] == {"sku": "A1", "quantity": 2}
    assert ULID.fullmatch(body["meta"]["correlation_id"])


def test_djangos_404_raised_in_a_view_keeps_its_message(client):
    response = client.get("/api/django-404/")
    assert response.status_code == 404
    assert body_and_id(response)["error"] == {
        "code": "not_found",
        "message": "No such thing.",
        "details": None,
    }
