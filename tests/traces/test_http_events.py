"""Events of the HTTP edge: what the middleware, Django's exception signal and the log handler record."""

from __future__ import annotations

import logging
import re

import pytest
from django.contrib.auth.models import User
from django.db import connection

from tests.support.waiting import wait_until
from tests.traces.conftest import events
from tracing_app.sampling import is_sampled
from tracing_app.traces import recorder
from tracing_app.traces.models import TraceEvent

pytestmark = pytest.mark.urls("tests.traces.urls")


@pytest.mark.django_db
def test_a_request_records_its_start_and_finish(tracing, client):
    response = client.get("/orders/ord-7/", headers={"user-agent": "support-test/1.0"})
    recorder.flush()
    started, finished = events(response["X-Correlation-ID"])
    assert started.kind == "request.started"
    assert started.attributes == {"method": "GET", "path": "/orders/ord-7/", "user_agent": "support-test/1.0"}
    assert finished.kind == "request.finished"
    assert (finished.name, finished.status, finished.error) == ("order", "200", False)
    assert finished.attributes == {"route": "orders/<str:order_id>/", "kwargs": {"order_id": "ord-7"}}
    assert finished.duration_ms > 0
    assert started.sequence < finished.sequence
    assert started.hop_id == finished.hop_id


@pytest.mark.django_db
def test_the_edges_attributes_are_cleaned_when_written(tracing, client, settings):
    # The edge leaves cleaning to the writer thread: masking and bounds still apply to what is stored.
    settings.TRACING_APP = {**settings.TRACING_APP, "TRACE_REDACT_KEYS": ("order_id", "agent")}
    response = client.get("/orders/secret-7/", headers={"user-agent": "a\x00b"})
    recorder.flush()
    started, finished = events(response["X-Correlation-ID"])
    assert started.attributes == {"method": "GET", "path": "/orders/secret-7/", "user_agent": "[redacted]"}
    assert finished.attributes["kwargs"] == {"order_id": "[redacted]"}


@pytest.mark.django_db
def test_an_incoming_id_that_was_not_adopted_is_kept_for_support(tracing, client, settings):
    settings.TRACING_APP = {**settings.TRACING_APP, "TRUST_INCOMING": False}
    response = client.get("/ok/", headers={"X-Correlation-ID": "partner-7"})
    recorder.flush()
    started = events(response["X-Correlation-ID"])[0]
    assert started.attributes["incoming_id"] == "partner-7"
    assert started.causation_id == "partner-7"


@pytest.mark.django_db
def test_warnings_inside_a_request_become_log_events(tracing, client):
    response = client.get("/warns/?sku=A-1")
    recorder.flush()
    stored = events(response["X-Correlation-ID"])
    assert [e.kind for e in stored] == ["request.started", "log", "request.finished"]
    log = stored[1]
    assert (log.name, log.status, log.error) == ("tests.traces", "WARNING", False)
    assert log.attributes["message"] == "stock for A-1 is low"
    assert log.attributes["location"].startswith("urls:")


@pytest.mark.django_db
def test_an_uncaught_exception_is_recorded_once_with_its_traceback(tracing, client):
    client.raise_request_exception = False
    response = client.get("/boom/")
    assert response.status_code == 500
    recorder.flush()
    stored = events(response["X-Correlation-ID"])
    assert [e.kind for e in stored] == ["request.started", "error", "request.finished"]
    error = stored[1]
    assert error.error and error.name == "boom"
    assert error.attributes["exception"] == "builtins.RuntimeError"
    assert error.attributes["message"] == "the gateway answered 502"
    assert 'raise RuntimeError("the gateway answered 502")' in error.attributes["traceback"]
    assert (stored[2].status, stored[2].error) == ("500", True)


@pytest.mark.django_db
def test_sampling_keeps_or_drops_each_transaction_whole(tracing, client, settings):
    settings.TRACING_APP = {**settings.TRACING_APP, "SAMPLE_RATE": 0.5}
    ids = [client.get("/warns/")["X-Correlation-ID"] for _ in range(40)]
    recorder.flush()
    kept = {cid for cid in ids if is_sampled(cid)}
    assert 0 < len(kept) < len(ids)
    for cid in ids:
        kinds = [e.kind for e in events(cid)]
        assert kinds == (["request.started", "log", "request.finished"] if cid in kept else [])


@pytest.mark.django_db
def test_errors_of_unsampled_requests_are_always_kept(tracing, client, settings):
    settings.TRACING_APP = {**settings.TRACING_APP, "SAMPLE_RATE": 0.0}
    client.raise_request_exception = False
    quiet = client.get("/warns/")["X-Correlation-ID"]
    failed = client.get("/boom/")["X-Correlation-ID"]
    unavailable = client.get("/server-error/")["X-Correlation-ID"]
    recorder.flush()
    assert events(quiet) == []
    assert [(e.kind, e.error) for e in events(failed)] == [("error", True), ("request.finished", True)]
    # Django's "Service Unavailable: /server-error/" line restates the status: not stored twice.
    (finished,) = events(unavailable)
    assert (finished.kind, finished.status, finished.error) == ("request.finished", "503", True)
    assert finished.attributes["path"] == "/server-error/"


# PostgreSQL: the writer thread's connection writes beside the test's (SQLite in memory locks it out).
@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_request_still_leaves_its_error_events(client, settings):
    """Written by the recorder's own thread and connection: the request's rollback cannot take them."""
    settings.TRACING_APP = {**settings.TRACING_APP, "TRACE_ENABLED": True, "TRACE_FLUSH_INTERVAL": 0.05}
    client.raise_request_exception = False
    cid = client.get("/rolled-back/")["X-Correlation-ID"]
    assert not User.objects.filter(username="ghost-of-a-rolled-back-request").exists()
    stored = wait_until(lambda: events(cid) if len(events(cid)) == 4 else None, what="4 events")
    assert [(e.kind, e.error) for e in stored] == [
        ("request.started", False),
        ("log", True),
        ("error", True),
        ("request.finished", True),
    ]
    assert stored[2].attributes["message"] == "order 42 vanished mid-checkout"


# PostgreSQL: the writer thread's connection writes beside the test's (SQLite in memory locks it out).
@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_the_background_writer_survives_a_database_failure(client, settings, caplog):
    settings.TRACING_APP = {**settings.TRACING_APP, "TRACE_ENABLED": True, "TRACE_FLUSH_INTERVAL": 0.05}
    table = TraceEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} RENAME TO {table}_away")
    try:
        with caplog.at_level(logging.WARNING, logger="tracing_app.recorder"):
            lost = client.get("/ok/")
            assert lost.status_code == 200
            # Both of its events: the writer may take the start before the request has finished.
            wait_until(lambda: _lost(caplog) >= 2, what="the recorder's warnings")
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table}_away RENAME TO {table}")
    cid = client.get("/ok/")["X-Correlation-ID"]
    wait_until(lambda: len(events(cid)) == 2, what="the next request's events")
    assert events(lost["X-Correlation-ID"]) == []


def _lost(caplog: pytest.LogCaptureFixture) -> int:
    found = (re.match(r"Could not record (\d+) trace event", r.getMessage()) for r in caplog.records)
    return sum(int(match.group(1)) for match in found if match)


@pytest.mark.django_db
def test_excluded_paths_record_only_their_errors(tracing, client, settings):
    settings.TRACING_APP = {**settings.TRACING_APP, "TRACE_EXCLUDE_PATHS": ("/ok/", "/server-error/")}
    quiet = client.get("/ok/")["X-Correlation-ID"]
    failing = client.get("/server-error/")["X-Correlation-ID"]
    recorded = client.get("/warns/")["X-Correlation-ID"]
    recorder.flush()
    assert events(quiet) == []
    assert [(e.kind, e.status) for e in events(failing)] == [("request.finished", "503")]
    assert len(events(recorded)) == 3


@pytest.mark.django_db
def test_an_unresolved_request_is_named_by_its_method_and_path(tracing, client, viewer_client):
    cid = client.post("/no/such/page/")["X-Correlation-ID"]
    recorder.flush()
    assert [(e.kind, e.name, e.status) for e in events(cid)] == [
        ("request.started", "", ""),
        ("request.finished", "", "404"),
    ]
    trace = viewer_client.get(f"/admin/tracing_app/trace/{cid}/").context["trace"]
    assert (trace.root.name, trace.root.outcome) == ("POST /no/such/page/", "not found")
    assert trace.outcome == "refused"
    listed = viewer_client.get("/admin/tracing_app/trace/").context["summaries"]
    assert ("POST /no/such/page/", "404", "refused") in [
        (s.entry_point, s.entry_status, s.outcome) for s, _ in listed
    ]
