"""A transaction's headline, merged batch by batch into its Trace row by the recorder."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from tracing_app.context import bind
from tracing_app.traces import recorder
from tracing_app.traces.models import Trace
from tracing_app.traces.queries import events_of
from tracing_app.traces.recorder import record
from tracing_app.traces.summary import figures_of

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls("tests.traces.urls"),
    pytest.mark.usefixtures("tracing"),
]


def stored(cid: str) -> Trace:
    return Trace.objects.get(pk=cid)


def test_figures_cover_every_hop_across_batches_and_match_the_trace_page():
    with bind(origin="http") as ctx:
        record("request.started", attributes={"method": "POST", "path": "/checkout/"})
        record("task.published", name="shop.charge", attributes={"task_id": "T1"})
        record("request.finished", name="checkout", status="202", duration_ms=12.0)
    recorder.flush()
    row = stored(ctx.correlation_id)
    # The request answered, but its task has not run: the transaction is not over.
    assert (row.outcome, row.entry_point, row.entry_status, row.requests, row.queued) == (
        "in progress",
        "checkout",
        "202",
        1,
        1,
    )
    with bind(ctx.correlation_id, causation_id=ctx.hop_id) as task:
        task.hop_id, task.sequence = "T1", ctx.sequence
        record("task.started", name="shop.charge", attributes={"retries": 0})
        record("task.retried", name="shop.charge", status="RETRY")
        record("task.started", name="shop.charge", attributes={"retries": 1})
        record("task.succeeded", name="shop.charge", status="SUCCESS")
    recorder.flush()
    row = stored(ctx.correlation_id)
    assert (row.outcome, row.tasks, row.retries, row.errors, row.events) == ("ok", 1, 1, 0, 7)
    assert row.duration_ms == pytest.approx((row.ended_at - row.started_at).total_seconds() * 1000)
    figures = figures_of(events_of(ctx.correlation_id)[0])
    assert (figures.outcome, figures.tasks, figures.retries, figures.duration_ms) == (
        row.outcome,
        row.tasks,
        row.retries,
        row.duration_ms,
    )


def failing_checkout(*, compensate: bool) -> str:
    with bind(origin="http") as ctx:
        record("request.started", attributes={"method": "POST", "path": "/checkout/"})
        record("request.finished", name="checkout", status="201")
    with bind(ctx.correlation_id, causation_id=ctx.hop_id) as task:
        task.hop_id = "CHARGE"
        record("task.started", name="shop.charge_payment")
        if compensate:
            record("task.published", name="shop.compensate_checkout", attributes={"task_id": "UNDO"})
        record("task.failed", name="shop.charge_payment", status="FAILURE", error=True)
    if compensate:
        with bind(ctx.correlation_id, causation_id="CHARGE") as undo:
            undo.hop_id = "UNDO"
            record("task.started", name="shop.compensate_checkout")
            record("task.succeeded", name="shop.compensate_checkout", status="SUCCESS")
    recorder.flush()
    return ctx.correlation_id


def test_a_failed_step_makes_the_transaction_failed_whatever_the_first_request_answered():
    row = stored(failing_checkout(compensate=False))
    assert (row.outcome, row.entry_status, row.errors) == ("failed", "201", 1)


def test_a_failure_undone_by_a_compensation_task_reads_compensated(settings):
    assert stored(failing_checkout(compensate=True)).outcome == "compensated"
    settings.TRACING_APP = {**settings.TRACING_APP, "TRACE_COMPENSATION_TASKS": ["rollback"]}
    assert stored(failing_checkout(compensate=True)).outcome == "failed"


def test_an_uncaught_exception_and_its_500_count_as_one_error():
    response = Client(raise_request_exception=False).get("/boom/")
    recorder.flush()
    row = stored(response["X-Correlation-ID"])
    assert (row.outcome, row.errors, row.entry_status) == ("failed", 1, "500")
    # A failing GET is no poll to hide.
    assert (row.entry_method, row.single_read) == ("GET", False)


def test_a_client_error_is_refused_and_a_single_read_is_marked(client):
    refused = client.post("/no/such/page/")["X-Correlation-ID"]
    read = client.get("/ok/")["X-Correlation-ID"]
    recorder.flush()
    assert (stored(refused).outcome, stored(refused).single_read) == ("refused", False)
    assert (stored(read).outcome, stored(read).single_read, stored(read).entry_method) == ("ok", True, "GET")


def test_the_entry_point_keeps_its_status_when_its_end_comes_in_a_later_batch():
    with bind(origin="http") as first:
        record("request.started", attributes={"method": "POST", "path": "/api/orders/"})
    recorder.flush()
    # A second request of the same transaction (its own clock, from 1 again) and the first one's end.
    with bind(first.correlation_id, origin="http") as second:
        second.hop_id = "REQ-2"
        record("request.started", attributes={"method": "POST", "path": "/api/orders/6/checkout/"})
    with bind(first.correlation_id, origin="http") as again:
        again.hop_id, again.sequence = first.hop_id, first.sequence
        record("request.finished", name="order-list", status="201")
    recorder.flush()
    assert second.hop_id != first.hop_id
    row = stored(first.correlation_id)
    assert (row.entry_hop, row.entry_point, row.entry_status) == (first.hop_id, "order-list", "201")


def test_rows_without_figures_are_recounted_from_their_events(settings):
    cid = failing_checkout(compensate=True)
    Trace.objects.filter(pk=cid).update(events=0, outcome="", errors=0, entry_point="")
    out = StringIO()
    call_command("rebuild_trace_figures", stdout=out)
    assert out.getvalue().strip() == "Recounted the figures of 1 transaction."
    row = stored(cid)
    assert (row.outcome, row.events, row.errors, row.entry_point) == ("compensated", 7, 1, "checkout")
    # A changed setting applies to stored rows once every row is recounted.
    settings.TRACING_APP = {**settings.TRACING_APP, "TRACE_COMPENSATION_TASKS": ["rollback"]}
    call_command("rebuild_trace_figures", stdout=out)
    assert stored(cid).outcome == "compensated"
    call_command("rebuild_trace_figures", "--all", stdout=out)
    assert stored(cid).outcome == "failed"


def test_a_task_whose_worker_died_and_that_ran_again_leaves_the_transaction_ok():
    with bind(origin="http") as ctx:
        record("request.started", attributes={"method": "POST", "path": "/checkout/"})
        record("task.published", name="shop.charge", attributes={"task_id": "T1"})
        record("request.finished", name="checkout", status="202", duration_ms=12.0)
    with bind(ctx.correlation_id, causation_id=ctx.hop_id) as task:
        task.hop_id, task.sequence = "T1", ctx.sequence
        # The first attempt's own events died with its process; the main process recorded the loss.
        lost = {"requeued": True}
        record("task.failed", name="shop.charge", status="WORKER LOST", error=True, attributes=lost)
        record("task.started", name="shop.charge", attributes={"retries": 0})
        record("task.succeeded", name="shop.charge", status="SUCCESS")
    recorder.flush()
    row = stored(ctx.correlation_id)
    assert (row.outcome, row.tasks, row.retries, row.errors) == ("ok", 1, 1, 0)
    figures = figures_of(events_of(ctx.correlation_id)[0])
    assert (figures.outcome, figures.tasks, figures.retries, figures.errors) == ("ok", 1, 1, 0)
