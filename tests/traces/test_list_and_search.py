"""The trace list's filters, search that finds what people type, links to related records, checks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.checks import run_checks
from django.urls import reverse
from django.utils import timezone

from tests.traces.test_admin import LIST, detail, fan_out
from tracing_app.context import bind
from tracing_app.traces import recorder
from tracing_app.traces.models import Trace, TraceEvent
from tracing_app.traces.recorder import annotate, record

# PostgreSQL: its free-text search behind the admin's list.
pytestmark = [
    pytest.mark.services,
    pytest.mark.django_db,
    pytest.mark.urls("tests.traces.urls"),
    pytest.mark.usefixtures("tracing"),
]


@pytest.fixture(autouse=True)
def _only_this_tests_transactions() -> None:
    # Rows committed by earlier tests' live servers and workers would join the list; rolled back after.
    TraceEvent.objects.all().delete()
    Trace.objects.all().delete()


def listed(client, **params) -> list[str]:
    return [summary.correlation_id for summary, _ in client.get(LIST, params).context["summaries"]]


def read(path: str = "/orders/7/") -> str:
    with bind(origin="http") as ctx:
        record("request.started", attributes={"method": "GET", "path": path})
        record("request.finished", name="order-detail", status="200", duration_ms=3.0)
    recorder.flush()
    return ctx.correlation_id


def test_single_reads_are_hidden_until_asked_for(viewer_client):
    checkout, poll = fan_out(), read()
    assert listed(viewer_client) == [checkout]
    assert listed(viewer_client, reads="1") == [poll, checkout]


def test_the_list_filters_by_outcome_entry_point_duration_and_time(viewer_client, store):
    failing, quiet = fan_out(), store()
    Trace.objects.filter(pk=failing).update(duration_ms=2500.0)
    Trace.objects.filter(pk=quiet).update(started_at=timezone.now() - timedelta(days=2))
    assert listed(viewer_client, outcome="failed") == [failing]
    assert listed(viewer_client, outcome="ok") == [quiet]
    assert listed(viewer_client, entry="checkout") == [failing, quiet]
    assert listed(viewer_client, entry="nothing") == []
    assert listed(viewer_client, min_ms="1000") == [failing]
    assert listed(viewer_client, max_ms="1000") == [quiet]
    since = (timezone.localtime() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert listed(viewer_client, since=since) == [failing]
    assert listed(viewer_client, until=since) == [quiet]
    assert listed(viewer_client, min_ms="not a number") == [failing, quiet]
    assert listed(viewer_client, errors="1") == [failing]


def test_a_lowercase_id_opens_its_trace(viewer_client, store):
    cid = store()
    response = viewer_client.get(LIST, {"q": cid.lower()})
    assert (response.status_code, response["Location"]) == (302, detail(cid))


@pytest.mark.parametrize("text", ["charge_card", "CARD DECLINED", "PaymentDeclinedError"])
def test_free_text_finds_task_names_and_error_messages(viewer_client, store, text):
    failing, quiet = fan_out(), store()
    found = listed(viewer_client, q=text)
    assert failing in found and quiet not in found


def test_free_text_treats_wildcards_literally(viewer_client):
    fan_out()
    assert listed(viewer_client, q="%") == [] and listed(viewer_client, q="charge%card") == []


def test_an_annotated_attribute_is_found_by_key_and_value(viewer_client):
    with bind(origin="http") as ctx:
        record("request.started", attributes={"method": "POST", "path": "/orders/"})
        annotate(order_id=6)
        record("request.finished", name="orders", status="201")
    recorder.flush()
    fan_out(order_id=66)
    assert listed(viewer_client, q="order_id=6") == [ctx.correlation_id]
    page = viewer_client.get(detail(ctx.correlation_id)).content.decode()
    assert "order_id=6" in page


def test_configured_keys_link_the_trace_to_their_records(viewer_client, settings):
    settings.TRACING_APP = {
        **settings.TRACING_APP,
        "TRACE_ADMIN_LINKS": {"order_id": "admin:tracing_app_trace_detail"},
    }
    cid = fan_out(order_id=42)
    page = viewer_client.get(detail(cid)).content.decode()
    assert f'href="{reverse("admin:tracing_app_trace_detail", args=["42"])}"' in page
    assert ">order 42<" in page


def test_tracebacks_read_as_frames_with_the_exception_first(viewer_client):
    with bind(origin="http") as ctx:
        try:
            raise ValueError("bad amount")
        except ValueError as exc:
            record("error", name="pay", error=True, attributes=recorder.describe_exception(exc))
    recorder.flush()
    page = viewer_client.get(detail(ctx.correlation_id)).content.decode()
    assert "<summary>ValueError: bad amount</summary>" in page
    assert 'class="tr-frame__function">test_tracebacks_read_as_frames_with_the_exception_first<' in page
    assert "\\n" not in page.split('id="timeline"')[1]


@pytest.mark.parametrize(
    ("setting", "value", "check_id"),
    [
        ("TRACE_COMPENSATION_TASKS", "compensate", "tracing_app.E504"),
        ("TRACE_ADMIN_LINKS", "no.such.module.links", "tracing_app.E506"),
        ("TRACE_ADMIN_LINKS", {"order_id": 3}, "tracing_app.E505"),
    ],
)
def test_misconfigured_trace_settings_are_reported(settings, setting, value, check_id):
    settings.TRACING_APP = {**settings.TRACING_APP, setting: value}
    assert check_id in [message.id for message in run_checks()]
