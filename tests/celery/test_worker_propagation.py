"""A real ``celery worker`` per broker: one HTTP request starts every shape of work, the worker's JSON log
must show the request's correlation ID on every line each of them wrote."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings
from django.test import Client, override_settings

from tests.project.celery import app
from tests.support.worker import CeleryProcess, delete_queues, run_beat, run_worker, unique_queue
from tests.taskapp import tasks
from tests.taskapp.raw import RAW_QUEUE_ENV, raw_queue
from tracing_app.context import bind
from tracing_app.ids import is_valid_id, new_id

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

Record = dict[str, Any]


@pytest.fixture(scope="module", params=["rabbitmq_url", "redis_url"], ids=["rabbitmq", "redis"])
def worker(request: pytest.FixtureRequest, django_db_setup: None) -> Iterator[CeleryProcess]:
    broker_url = request.getfixturevalue(request.param)
    queue = unique_queue()
    try:
        with run_worker(broker_url, queue=queue, env={RAW_QUEUE_ENV: raw_name(queue)}) as running:
            yield running
    finally:
        delete_queues(broker_url, raw_queue(raw_name(queue)))


def raw_name(queue: str) -> str:
    """The raw kombu queue that goes with a worker's task queue."""
    return f"{queue}.raw"


@dataclass
class Started:
    run: str
    correlation_id: str
    hop_id: str
    sent: dict[str, str]


@pytest.fixture(scope="module")
def started(worker: CeleryProcess, django_db_blocker: Any) -> Started:
    """One request through the middleware, carrying a trusted incoming ID, starts everything."""
    run = uuid.uuid4().hex[:8]
    incoming = new_id()
    trusted = {**settings.TRACING_APP, "TRUST_INCOMING": True}
    with (
        django_db_blocker.unblock(),
        override_settings(ROOT_URLCONF="tests.taskapp.urls", TRACING_APP=trusted),
    ):
        response = Client().get(
            "/start/", {"run": run, "raw_queue": raw_name(worker.queue)}, HTTP_X_CORRELATION_ID=incoming
        )
    assert response.status_code == 200, response.content
    body = response.json()
    assert response["X-Correlation-ID"] == body["correlation_id"] == incoming
    assert body["hop_id"] != incoming, "the request is a hop of its own"
    return Started(run, body["correlation_id"], body["hop_id"], body["sent"])


def task_records(worker: CeleryProcess, label: str, event: str = "ran", count: int = 1) -> list[Record]:
    return worker.wait_for_all(lambda r: r.get("label") == label and r.get("event") == event, count, 60)


def celery_lines(worker: CeleryProcess, task_id: str, logger: str, text: str) -> Record:
    return worker.wait_for(
        lambda r: r["logger"] == logger and r["data"]["id"] == task_id and text in r["message"], 60
    )


def assert_carries(record: Record, correlation_id: str) -> None:
    assert record["correlation_id"] == correlation_id, record
    assert record["seen"]["correlation_id"] == correlation_id, record


def test_plain_task_and_celerys_own_lines(worker: CeleryProcess, started: Started) -> None:
    (record,) = task_records(worker, f"{started.run}:plain")
    assert_carries(record, started.correlation_id)
    task_id = started.sent["plain"]
    assert record["task_id"] == task_id
    assert record["seen"]["hop_id"] == task_id
    assert record["seen"]["causation_id"] == started.hop_id == record["causation_id"]
    assert record["seen"]["origin"] == "task"
    assert record["seen"]["sequence"] >= 1
    received = celery_lines(worker, task_id, "celery.worker.strategy", "received")
    succeeded = celery_lines(worker, task_id, "celery.app.trace", "succeeded")
    assert received["correlation_id"] == succeeded["correlation_id"] == started.correlation_id
    assert received["task_id"] == succeeded["task_id"] == task_id
    assert received["task_name"] == "tests.taskapp.tasks.record"
    assert received["process"] != record["process"], "prefork: received in the main process, run in a child"


def test_task_logger_lines(worker: CeleryProcess, started: Started) -> None:
    (record,) = task_records(worker, f"{started.run}:task-logger")
    assert record["logger"] == "tests.taskapp.tasks"
    assert record["correlation_id"] == started.correlation_id
    assert record["task_id"] == started.sent["task-logger"]


def test_user_headers_survive(worker: CeleryProcess, started: Started) -> None:
    (record,) = task_records(worker, f"{started.run}:headers")
    assert_carries(record, started.correlation_id)
    assert record["custom_headers"] == {"x_tenant": "acme"}


def test_send_task_by_name(worker: CeleryProcess, started: Started) -> None:
    (record,) = task_records(worker, f"{started.run}:send-task")
    assert_carries(record, started.correlation_id)


def test_delay_on_commit(worker: CeleryProcess, started: Started) -> None:
    (record,) = task_records(worker, f"{started.run}:on-commit")
    assert_carries(record, started.correlation_id)


@pytest.mark.parametrize("shape", ["retry", "autoretry"])
def test_every_attempt_of_a_retried_task(worker: CeleryProcess, started: Started, shape: str) -> None:
    label = f"{started.run}:{shape}"
    attempts = task_records(worker, label, event="attempt", count=3)
    (done,) = task_records(worker, label)
    for record in [*attempts, done]:
        assert_carries(record, started.correlation_id)
        assert record["task_id"] == started.sent[shape], "a retry keeps Celery's task ID"
    assert [r["retries"] for r in attempts] == [0, 1, 2]
    sequences = [r["seen"]["sequence"] for r in attempts]
    assert sequences == sorted(set(sequences)), f"the clock must advance with each retry: {sequences}"
    retry_lines = worker.wait_for_all(
        lambda r: (
            r["logger"] == "celery.app.trace"
            and r["data"]["id"] == started.sent[shape]
            and "retry" in r["message"]
        ),
        2,
        60,
    )
    assert {r["correlation_id"] for r in retry_lines} == {started.correlation_id}


def test_chain_links_each_step_to_the_previous(worker: CeleryProcess, started: Started) -> None:
    steps = [task_records(worker, f"{started.run}:chain-{n}")[0] for n in (1, 2, 3)]
    for record in steps:
        assert_carries(record, started.correlation_id)
    assert steps[0]["seen"]["causation_id"] == started.hop_id
    for previous, step in itertools.pairwise(steps):
        assert step["seen"]["causation_id"] == previous["task_id"]
        assert step["seen"]["sequence"] > previous["seen"]["sequence"]


def test_group(worker: CeleryProcess, started: Started) -> None:
    members = [task_records(worker, f"{started.run}:group-{n}")[0] for n in range(3)]
    for record in members:
        assert_carries(record, started.correlation_id)
    assert len({r["task_id"] for r in members}) == 3


def test_chord_and_its_callback(worker: CeleryProcess, started: Started) -> None:
    header = [task_records(worker, f"{started.run}:chord-{n}")[0] for n in range(3)]
    (callback,) = task_records(worker, f"{started.run}:chord-callback")
    for record in [*header, callback]:
        assert_carries(record, started.correlation_id)
    assert callback["results"] == sorted(f"{started.run}:chord-{n}" for n in range(3))
    assert callback["task_id"] == started.sent["chord"]


def test_child_task_is_caused_by_its_parent(worker: CeleryProcess, started: Started) -> None:
    (parent,) = task_records(worker, f"{started.run}:parent")
    (child,) = task_records(worker, f"{started.run}:parent.child")
    assert_carries(parent, started.correlation_id)
    assert_carries(child, started.correlation_id)
    assert child["seen"]["causation_id"] == parent["task_id"] == started.sent["parent"]
    assert child["seen"]["sequence"] > parent["seen"]["sequence"]


def test_failure_line(worker: CeleryProcess, started: Started) -> None:
    line = celery_lines(worker, started.sent["failing"], "celery.app.trace", "raised unexpected")
    assert line["level"] == "ERROR"
    assert line["correlation_id"] == started.correlation_id
    assert "fails on purpose" in line["exception"]


def test_raw_kombu_message(worker: CeleryProcess, started: Started) -> None:
    record = worker.wait_for(lambda r: r.get("event") == "raw" and r.get("label") == f"{started.run}:raw", 60)
    assert record["correlation_id"] == started.correlation_id
    assert record["seen"]["causation_id"] == started.hop_id
    assert record["seen"]["origin"] == "message"


def test_raw_message_with_bad_metadata_is_still_processed(worker: CeleryProcess) -> None:
    queue = raw_queue(raw_name(worker.queue))
    hostile = 'forged\n{"level": "CRITICAL"}'
    with app.producer_or_acquire() as producer:
        producer.publish(
            {"metadata": {"correlation_id": hostile}, "payload": {"label": "bad-metadata"}},
            serializer="json",
            routing_key=queue.name,
            declare=[queue],
        )
    record = worker.wait_for(lambda r: r.get("event") == "raw" and r.get("label") == "bad-metadata", 60)
    assert is_valid_id(record["correlation_id"])
    warning = worker.wait_for(
        lambda r: r["logger"] == "tracing_app.messaging" and r["correlation_id"] == record["correlation_id"]
    )
    assert warning["level"] == "WARNING"
    assert "forged\\n{" in warning["message"], "the original value is logged escaped"
    assert "\n" not in warning["message"]


def test_beat_task_gets_a_fresh_id_each_run(worker: CeleryProcess, started: Started) -> None:
    with run_beat(
        worker.broker_url,
        queue=worker.queue,
        app_module="tests.taskapp.beat",
        result_backend=worker.result_backend,
    ):
        runs = task_records(worker, "beat", count=2)
    ids = [r["correlation_id"] for r in runs]
    assert all(is_valid_id(value) for value in ids)
    assert len(set(ids)) == 2, "each beat run is its own transaction"
    assert started.correlation_id not in ids
    for record in runs:
        assert record["seen"]["origin"] == "beat"
        assert record["seen"]["causation_id"] is None


def test_worker_lost_is_logged_in_the_transaction(worker: CeleryProcess) -> None:
    with bind() as ctx:
        result = tasks.lose_worker.delay("lost")
    line = worker.wait_for(
        lambda r: r["logger"] == "celery.worker.request" and "WorkerLostError" in r.get("exception", ""), 60
    )
    assert line["correlation_id"] == ctx.correlation_id
    assert line["task_id"] == result.id
    assert line["process"] == worker.pid
    received = celery_lines(worker, result.id, "celery.worker.strategy", "received")
    assert received["correlation_id"] == ctx.correlation_id
    assert received["task_id"] == result.id


def test_a_task_class_of_its_own_is_traced_and_requeued_when_its_worker_is_lost(
    worker: CeleryProcess,
) -> None:
    assert not issubclass(tasks.OwnBase, app.Task)
    with bind() as ctx:
        result = tasks.lose_worker_once.delay("own-base")
    line = worker.wait_for(
        lambda r: (
            r["logger"] == "celery.worker.request"
            and "WorkerLostError" in r.get("exception", "")
            and r["task_id"] == result.id
        ),
        60,
    )
    assert line["correlation_id"] == ctx.correlation_id
    assert line["task_name"] == tasks.lose_worker_once.name
    (rerun,) = task_records(worker, "own-base")
    assert rerun["seen"]["correlation_id"] == ctx.correlation_id


def test_hard_time_limit_is_logged_in_the_transaction(worker: CeleryProcess) -> None:
    with bind() as ctx:
        result = tasks.slow.apply_async(("too-slow", 50, 0.1), time_limit=1)
    line = worker.wait_for(
        lambda r: r["logger"] == "celery.worker.request" and "Hard time limit" in r["message"], 60
    )
    assert result.id in line["message"]
    assert line["correlation_id"] == ctx.correlation_id
    assert line["task_id"] == result.id


def test_revoked_scheduled_task_is_discarded_in_the_transaction(worker: CeleryProcess) -> None:
    with bind() as ctx:
        result = tasks.record.apply_async(("revoked",), countdown=1)
    celery_lines(worker, result.id, "celery.worker.strategy", "received")
    app.control.revoke(result.id)
    line = worker.wait_for(
        lambda r: (
            r["logger"] == "celery.worker.request"
            and "Discarding revoked task: " in r["message"]
            and result.id in r["message"]
        ),
        60,
    )
    assert line["correlation_id"] == ctx.correlation_id
    assert not [r for r in worker.records() if r.get("label") == "revoked"], "it never ran"


def test_every_line_is_json_and_nothing_leaks_between_tasks(worker: CeleryProcess, started: Started) -> None:
    task_records(worker, f"{started.run}:chord-callback")
    records = worker.records()
    assert [r for r in records if "unparsed" in r] == []
    transaction_of = {
        r["data"]["id"]: r["correlation_id"] for r in records if r["logger"] == "celery.app.trace"
    }
    after = [r for r in records if r.get("event") == "after" and r["after_task_id"] in transaction_of]
    assert after, "the task_success probe ran"
    for record in after:
        assert record["correlation_id"] == transaction_of[record["after_task_id"]], record
    leaks = [r for r in records if r["logger"] == "tracing_app.celery" and r["level"] == "WARNING"]
    assert leaks == []
