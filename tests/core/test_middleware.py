import asyncio
import json
import logging

import pytest
from django.core.handlers.asgi import ASGIHandler
from django.http import BadHeaderError, HttpResponse
from django.test import RequestFactory, override_settings
from ulid import ULID

from tracing_app.context import get_correlation_id
from tracing_app.middleware import CorrelationIdMiddleware, expose_header

pytestmark = pytest.mark.urls("tests.core.urls")

HOSTILE_HEADERS = [
    "abc\r\nSet-Cookie: pwned=1",
    "abc\x00def",
    "a" * 10_000,
    "ünïcödé",
    'abc","admin":true,"x":"',
    "<script>alert(1)</script>",
]


def test_mints_a_ulid_and_returns_it(client):
    response = client.get("/plain/")
    cid = response["X-Correlation-ID"]
    assert str(ULID.from_str(cid)) == cid
    assert response.json() == {"correlation_id": cid}
    assert get_correlation_id() is None


def test_each_request_gets_its_own_id(client):
    ids = {client.get("/plain/")["X-Correlation-ID"] for _ in range(20)}
    assert len(ids) == 20


def test_trusted_valid_incoming_id_is_adopted(client):
    with override_settings(TRACING_APP={"TRUST_INCOMING": True}):
        response = client.get("/plain/", headers={"X-Correlation-ID": "upstream-7.a:b"})
    assert response["X-Correlation-ID"] == "upstream-7.a:b"
    assert response.json()["correlation_id"] == "upstream-7.a:b"


def test_untrusted_valid_id_becomes_the_causation_id(client, caplog):
    with override_settings(TRACING_APP={"TRUST_INCOMING": False}), caplog.at_level(logging.INFO):
        response = client.get("/plain/", headers={"X-Correlation-ID": "upstream-7"})
    assert response["X-Correlation-ID"] != "upstream-7"
    record = next(r for r in caplog.records if r.getMessage() == "plain view")
    assert record.causation_id == "upstream-7"
    assert record.correlation_id == response["X-Correlation-ID"]


@pytest.mark.parametrize("value", HOSTILE_HEADERS)
def test_hostile_incoming_id_is_replaced_never_echoed_or_logged_raw(client, caplog, value):
    with override_settings(TRACING_APP={"TRUST_INCOMING": True}), caplog.at_level(logging.INFO):
        response = client.get("/plain/", HTTP_X_CORRELATION_ID=value)
    cid = response["X-Correlation-ID"]
    assert str(ULID.from_str(cid)) == cid
    assert value not in response.content.decode()
    assert all(value not in header for header in response.headers.values())
    rejected = [r for r in caplog.records if r.name == "tracing_app.middleware"]
    assert len(rejected) == 1
    message = rejected[0].getMessage()
    assert message.isascii() and '"' not in message
    assert "\n" not in message and "\r" not in message and "\x00" not in message
    assert rejected[0].correlation_id == cid
    assert rejected[0].causation_id == "-", "the empty value, as on every other line (not None)"
    assert len(message) < 200


def test_alternate_header_is_read_when_the_main_one_is_absent(client):
    settings = {"TRUST_INCOMING": True, "ALTERNATE_HEADERS": ["X-Request-ID"]}
    with override_settings(TRACING_APP=settings):
        alone = client.get("/plain/", headers={"X-Request-ID": "5a2c8d1e7f3b4a6c9d0e1f2a3b4c5d6e"})
        both = client.get("/plain/", headers={"X-Request-ID": "from-nginx", "X-Correlation-ID": "main"})
    assert alone["X-Correlation-ID"] == "5a2c8d1e7f3b4a6c9d0e1f2a3b4c5d6e"
    assert both["X-Correlation-ID"] == "main"


def test_header_name_is_configurable(client):
    with override_settings(TRACING_APP={"HEADER": "X-Trace", "TRUST_INCOMING": True}):
        response = client.get("/plain/", headers={"X-Trace": "abc-1"})
    assert response["X-Trace"] == "abc-1"
    assert "X-Correlation-ID" not in response


@pytest.mark.parametrize("header", ["X-Trace", "x-request-id", "X_Odd.Name~1"])
def test_the_response_header_is_what_django_itself_would_send(client, header):
    """The header goes straight into Django's header store: it must read, iterate and serialise exactly
    as one set with ``response[name] = value``, in every Django version the project supports."""
    with override_settings(TRACING_APP={"HEADER": header, "TRUST_INCOMING": True}):
        response = client.get("/plain/", headers={header: "abc-1"})
    expected = HttpResponse()
    expected[header] = "abc-1"
    (line,) = (line for line in expected.serialize_headers().split(b"\r\n") if b"abc-1" in line)
    assert response[header.upper()] == response[header] == "abc-1"
    assert (header, "abc-1") in response.items()
    assert line in response.serialize_headers().split(b"\r\n")
    response[header] = "replaced"  # later code may still set it the usual way
    assert [value for name, value in response.items() if name.lower() == header.lower()] == ["replaced"]


def test_a_header_name_django_must_check_is_set_the_usual_way(client):
    with override_settings(TRACING_APP={"HEADER": "X-Correlation ID"}):
        response = client.get("/plain/")
    assert ULID.from_str(response["X-Correlation ID"])


def test_a_header_name_that_could_inject_a_header_never_reaches_the_response(client):
    """Such a name is a check error (E002); if a server runs anyway, Django's own validation refuses it
    rather than the shortcut writing it out raw."""
    hostile = {"HEADER": "X-Evil\r\nSet-Cookie: a=b"}
    with override_settings(TRACING_APP=hostile), pytest.raises(BadHeaderError):
        client.get("/plain/")


def test_expose_header_appends_to_existing_cors_list():
    response = HttpResponse()
    response["Access-Control-Expose-Headers"] = "X-Total-Count, ETag"
    expose_header(response, "X-Correlation-ID")
    assert response["Access-Control-Expose-Headers"] == "X-Total-Count, ETag, X-Correlation-ID"
    expose_header(response, "x-correlation-id")
    assert response["Access-Control-Expose-Headers"].count("Correlation") == 1


def test_expose_header_setting(client):
    with override_settings(TRACING_APP={"EXPOSE_HEADER": True}):
        assert client.get("/plain/")["Access-Control-Expose-Headers"] == "X-Correlation-ID"
    with override_settings(TRACING_APP={"EXPOSE_HEADER": False}):
        assert "Access-Control-Expose-Headers" not in client.get("/plain/")


def test_no_vary_cookie_unless_the_view_used_the_session(client, db):
    assert "Cookie" not in client.get("/plain/").get("Vary", "")
    assert "Cookie" in client.get("/session/").get("Vary", "")


def test_sync_middleware_leaves_no_context_behind():
    middleware = CorrelationIdMiddleware(lambda request: HttpResponse(get_correlation_id()))
    response = middleware(RequestFactory().get("/"))
    assert response.content.decode() == response["X-Correlation-ID"]
    assert get_correlation_id() is None


def test_context_is_reset_when_the_view_raises():
    def explode(request):
        raise ValueError("x")

    with pytest.raises(ValueError, match="x"):
        CorrelationIdMiddleware(explode)(RequestFactory().get("/"))
    assert get_correlation_id() is None


def test_async_view(async_client):
    response = asyncio.run(async_client.get("/async/"))
    body = response.json()
    assert body["before"] == body["after"] == response["X-Correlation-ID"]


def test_many_concurrent_asgi_requests_never_see_each_others_ids():
    application = ASGIHandler()

    async def call(n):
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/async/",
            "raw_path": b"/async/",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"testserver"), (b"x-correlation-id", f"req-{n}".encode())],
            "client": ("127.0.0.1", 1000 + n),
            "server": ("testserver", 80),
        }
        sent = []
        requests = [{"type": "http.request", "body": b"", "more_body": False}]

        async def receive():
            if requests:
                return requests.pop()
            # The client stays connected: Django's disconnect listener waits here until cancelled.
            await asyncio.Future()

        async def send(message):
            sent.append(message)

        await application(scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return dict(start["headers"])[b"X-Correlation-ID"].decode(), json.loads(body)

    async def main():
        return await asyncio.gather(*(call(n) for n in range(200)))

    with override_settings(TRACING_APP={"TRUST_INCOMING": True}):
        results = asyncio.run(main())
    for n, (header, body) in enumerate(results):
        assert header == body["before"] == body["after"] == f"req-{n}"
