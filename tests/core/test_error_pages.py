import logging
import re

import pytest
from django.db import connection
from django.db.utils import OperationalError
from django.test import RequestFactory, override_settings

from tests.support.browser import save_screenshot
from tracing_app import views

pytestmark = pytest.mark.urls("tests.core.urls")
ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")

CASES = [
    ("/suspicious/", 400, "bad_request"),
    ("/forbidden/", 403, "permission_denied"),
    ("/does-not-exist/", 404, "not_found"),
    ("/boom/", 500, "server_error"),
]


@pytest.fixture
def quiet_client(client):
    client.raise_request_exception = False
    return client


@pytest.mark.parametrize(("path", "status", "code"), CASES)
def test_html_error_pages_show_the_id(quiet_client, path, status, code):
    response = quiet_client.get(path, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    cid = response["X-Correlation-ID"]
    html = response.content.decode()
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")
    assert ULID.fullmatch(cid)
    assert f'<code id="correlation-id">{cid}</code>' in html
    assert "Quote this ID to support" in html


@pytest.mark.parametrize(("path", "status", "code"), CASES)
def test_json_clients_get_the_error_envelope(quiet_client, path, status, code):
    response = quiet_client.get(path, headers={"Accept": "application/json"})
    assert response.status_code == status
    assert response.json() == {
        "error": {"code": code, "message": views.__dict__[_kind(status, code)].message, "details": None},
        "meta": {"correlation_id": response["X-Correlation-ID"]},
    }


def _kind(status, code):
    return {400: "BAD_REQUEST", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 500: "SERVER_ERROR"}[status]


def test_oversized_body_is_a_413_with_the_envelope(quiet_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = quiet_client.post(
        "/body/", b"x" * 4096, content_type="application/octet-stream", headers={"Accept": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert response.json()["meta"]["correlation_id"] == response["X-Correlation-ID"]


def test_500_page_logs_the_same_id(quiet_client, caplog):
    with caplog.at_level(logging.ERROR):
        response = quiet_client.get("/boom/")
    logged = [r for r in caplog.records if r.name == "django.request"]
    assert logged and logged[0].correlation_id == response["X-Correlation-ID"]


def test_error_responses_returned_by_views_are_logged_with_the_id(client, caplog):
    with caplog.at_level(logging.WARNING):
        response = client.get("/api/manual-error/")
    (record,) = [r for r in caplog.records if r.name == "django.request"]
    assert record.getMessage() == "Too Many Requests: /api/manual-error/"
    assert record.correlation_id == response["X-Correlation-ID"]


def test_500_page_renders_with_the_database_down(quiet_client, db):
    def database_down(execute, sql, params, many, context):
        raise OperationalError("connection refused")

    with connection.execute_wrapper(database_down):
        response = quiet_client.get("/boom/")
    assert response.status_code == 500
    assert response["X-Correlation-ID"] in response.content.decode()


def test_500_page_survives_a_broken_template(quiet_client, settings, tmp_path):
    (tmp_path / "tracing_app").mkdir()
    (tmp_path / "tracing_app" / "500.html").write_text("{% broken_tag %}")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    response = quiet_client.get("/boom/")
    assert response.status_code == 500
    assert response["X-Correlation-ID"] in response.content.decode()


def test_templates_are_overridable(quiet_client, settings, tmp_path):
    (tmp_path / "tracing_app").mkdir()
    (tmp_path / "tracing_app" / "404.html").write_text("Lost? Support ID: {{ correlation_id }}")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    response = quiet_client.get("/nowhere/")
    assert response.content.decode() == f"Lost? Support ID: {response['X-Correlation-ID']}"


def test_error_outside_the_middleware_still_quotes_a_logged_id(caplog):
    with caplog.at_level(logging.WARNING):
        response = views.server_error(RequestFactory().get("/"))
    cid = response["X-Correlation-ID"]
    assert cid in response.content.decode()
    assert any(cid in r.getMessage() for r in caplog.records)


def test_csrf_failure_view(client, db):
    csrf_client = client.__class__(enforce_csrf_checks=True)
    with override_settings(CSRF_FAILURE_VIEW="tracing_app.views.csrf_failure"):
        response = csrf_client.post("/plain/", {})
    assert response.status_code == 403
    assert response["X-Correlation-ID"] in response.content.decode()


@pytest.mark.browser
def test_error_page_in_chromium(live_server, chromium, caplog):
    with caplog.at_level(logging.WARNING):
        chromium.get(f"{live_server.url}/does-not-exist/")
    shown = chromium.find_element("id", "correlation-id").text
    assert ULID.fullmatch(shown)
    logged = [r for r in caplog.records if r.getMessage() == "Not Found: /does-not-exist/"]
    assert [r.correlation_id for r in logged] == [shown]
    assert chromium.title == "404 · Page not found"
    button = chromium.find_element("id", "copy-id")
    button.click()
    assert button.text == "Copied"
    assert button.get_attribute("data-id") == shown
    save_screenshot(chromium, "error-page-404")


def test_the_debug_technical_500_page_shows_the_id(quiet_client, settings):
    settings.DEBUG = True
    settings.DEFAULT_EXCEPTION_REPORTER = "tracing_app.debug.CorrelationIdExceptionReporter"
    page = quiet_client.get("/boom/", headers={"Accept": "text/html"})
    assert page.status_code == 500
    assert "Traceback" in page.content.decode(), "Django's technical page, not handler500"
    assert (
        f"<strong>Correlation ID:</strong> <code>{page['X-Correlation-ID']}</code>" in page.content.decode()
    )
    text = quiet_client.get("/boom/", headers={"Accept": "text/plain"})
    assert text.content.decode().startswith(f"Correlation ID: {text['X-Correlation-ID']}\n")


def test_the_debug_technical_500_page_in_chromium(live_server, chromium, settings):
    settings.DEBUG = True
    settings.DEFAULT_EXCEPTION_REPORTER = "tracing_app.debug.CorrelationIdExceptionReporter"
    chromium.get(f"{live_server.url}/boom/")
    shown = chromium.find_element("css selector", "#correlation-id code").text
    assert ULID.fullmatch(shown)
    summary = chromium.find_element("id", "summary").text
    assert summary.index("Correlation ID:") < summary.index("RuntimeError")
    save_screenshot(chromium, "debug-500-page")
