"""Canvas through the outbox on a real worker (RabbitMQ): a chain and a chord queued in one transaction
run whole, every task under the publishing transaction's correlation ID."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from celery import chain, chord
from django.db import transaction

from tests.support.worker import CeleryProcess, run_worker
from tests.taskapp import tasks
from tracing_app.context import bind
from tracing_app.outbox import send_on_commit

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def worker(django_db_setup: Any, rabbitmq_url: str, redis_url: str) -> Iterator[CeleryProcess]:
    # A chord needs a result backend that counts its header's results.
    with run_worker(rabbitmq_url, result_backend=redis_url) as running:
        yield running


def test_a_chain_and_a_chord_queued_in_one_transaction_run_whole(worker: CeleryProcess) -> None:
    run = uuid.uuid4().hex[:8]
    with bind() as ctx, transaction.atomic():
        send_on_commit(chain(tasks.record.si(f"{run}:chain-1"), tasks.record.si(f"{run}:chain-2")))
        send_on_commit(
            chord([tasks.record.si(f"{run}:chord-{i}") for i in range(3)], tasks.collect.s(f"{run}:callback"))
        )
    labels = [f"{run}:chain-1", f"{run}:chain-2", *(f"{run}:chord-{i}" for i in range(3)), f"{run}:callback"]
    for label in labels:
        (ran,) = worker.wait_for_all(
            lambda r, label=label: r.get("label") == label and r.get("event") == "ran", 1, 60
        )
        assert ran["seen"]["correlation_id"] == ctx.correlation_id, label
    callback = worker.wait_for(lambda r: r.get("label") == f"{run}:callback" and r.get("event") == "ran")
    assert callback["results"] == sorted(f"{run}:chord-{i}" for i in range(3))
