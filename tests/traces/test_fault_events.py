"""Faults in the trace: a message the broker never took, a worker process killed under a task."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kombu.exceptions import OperationalError

from tests.project.celery import app
from tests.support.ports import free_port
from tests.support.waiting import wait_until
from tests.support.worker import CeleryProcess, publishing_to, run_worker
from tests.taskapp import tasks
from tests.traces.conftest import events
from tracing_app.context import bind
from tracing_app.traces import recorder
from tracing_app.traces.models import Trace

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


@pytest.fixture(scope="module")
def worker(django_db_setup: Any, rabbitmq_url: str) -> Iterator[CeleryProcess]:
    with run_worker(rabbitmq_url, env={"TRACE_EVENTS": "1", "TRACE_FLUSH_INTERVAL": "0.2"}) as process:
        yield process


def test_a_message_the_broker_never_took_is_an_error_not_a_publish(tracing: dict[str, Any]) -> None:
    with (
        publishing_to(f"amqp://guest:guest@127.0.0.1:{free_port()}//", "unreachable"),
        bind() as ctx,
        pytest.raises(OperationalError),
    ):
        tasks.record.apply_async(("never sent",), retry=False)
    recorder.flush()
    (failed,) = events(ctx.correlation_id)
    assert (failed.kind, failed.status, failed.error) == ("task.publish_failed", "NOT SENT", True)
    assert failed.name == tasks.record.name
    assert failed.attributes["exception"] == "kombu.exceptions.OperationalError"
    assert failed.attributes["task_id"]


def test_published_is_recorded_once_the_broker_accepted(tracing: dict[str, Any], rabbitmq_url: str) -> None:
    with publishing_to(rabbitmq_url, "tracing-accepted"), bind() as ctx:
        result = tasks.record.apply_async(("accepted",), queue="tracing-accepted")
    recorder.flush()
    (published,) = events(ctx.correlation_id)
    assert (published.kind, published.attributes["task_id"]) == ("task.published", result.id)


def test_a_lost_worker_is_an_error_in_the_trace_then_the_task_runs_again(
    worker: CeleryProcess, tracing: dict[str, Any]
) -> None:
    with bind() as ctx:
        result = tasks.lose_worker_once.delay("lost-traced")

    def finished() -> list[Any]:
        return [e for e in events(ctx.correlation_id) if e.kind == "task.succeeded"]

    wait_until(finished, timeout=60, what="the redelivered task to succeed and be recorded")
    lost = [e for e in events(ctx.correlation_id) if e.error]
    assert [(e.kind, e.status, e.hop_id) for e in lost] == [("task.failed", "WORKER LOST", result.id)]
    assert lost[0].attributes["requeued"] is True
    assert lost[0].attributes["exception"] == "billiard.exceptions.WorkerLostError"
    # Run again and succeeded: one task, retried once, and the transaction did not fail.
    row = Trace.objects.get(pk=ctx.correlation_id)
    assert (row.outcome, row.tasks, row.retries, row.errors) == ("ok", 1, 1, 0)


def test_a_revoked_task_is_an_error_in_the_trace(worker: CeleryProcess, tracing: dict[str, Any]) -> None:
    with bind() as ctx:
        result = tasks.record.apply_async(("revoked-traced",), countdown=2)
    worker.wait_for(lambda r: r.get("task_id") == result.id and "received" in r["message"], 30)
    app.control.revoke(result.id)

    def revoked() -> list[Any]:
        return [e for e in events(ctx.correlation_id) if e.kind == "task.revoked"]

    (event,) = wait_until(revoked, timeout=30, what="the revoked task's event")
    assert (event.status, event.error, event.hop_id) == ("REVOKED", True, result.id)


def test_a_hard_time_limit_is_an_error_in_the_trace(worker: CeleryProcess, tracing: dict[str, Any]) -> None:
    with bind() as ctx:
        result = tasks.slow.apply_async(("time-limited", 50, 0.1), time_limit=1)

    def failed() -> list[Any]:
        return [e for e in events(ctx.correlation_id) if e.kind == "task.failed"]

    (event,) = wait_until(failed, timeout=30, what="the killed task's failure event")
    assert (event.error, event.hop_id) == (True, result.id)
    assert event.attributes["exception"].endswith("TimeLimitExceeded")
