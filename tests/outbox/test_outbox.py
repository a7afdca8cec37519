"""The outbox through the real Celery/kombu publish path: memory transport for the message, PostgreSQL
for the rows, an unreachable broker for the outage."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from celery import chain
from django.db import transaction
from django.utils import timezone
from kombu import Message

from tests.support.ports import free_port
from tests.support.worker import publishing_to
from tests.taskapp import tasks
from tracing_app.celery import CAUSATION_HEADER, CORRELATION_HEADER, SEQUENCE_HEADER
from tracing_app.context import bind
from tracing_app.outbox import send_on_commit
from tracing_app.outbox.enqueue import wait_for_sender
from tracing_app.outbox.models import OutboxMessage
from tracing_app.outbox.relay import BrokerUnavailable, relay_batch

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

Drain = Callable[[], list[Message]]


def make_due() -> None:
    OutboxMessage.objects.update(available_at=timezone.now() - timedelta(seconds=1))


def test_sent_once_committed_in_the_publishers_transaction(published: Drain) -> None:
    with bind() as ctx, transaction.atomic():
        result = send_on_commit(tasks.record.si("outbox"))
        assert published() == [], "nothing leaves before the commit"
        assert OutboxMessage.objects.count() == 1
        queued_at = ctx.sequence
    assert wait_for_sender()
    (message,) = published()
    assert message.headers["id"] == result.id
    assert message.headers[CORRELATION_HEADER] == ctx.correlation_id
    assert message.headers[CAUSATION_HEADER] == ctx.hop_id
    assert int(message.headers[SEQUENCE_HEADER]) == queued_at
    assert not OutboxMessage.objects.exists(), "a published row is deleted"


def test_rolled_back_transaction_sends_nothing(published: Drain) -> None:
    with bind(), transaction.atomic():
        send_on_commit(tasks.record.si("rolled back"))
        transaction.set_rollback(True)
    assert wait_for_sender()
    assert published() == []
    assert not OutboxMessage.objects.exists()


def test_outside_a_transaction_it_is_sent_at_once(published: Drain) -> None:
    with bind() as ctx:
        result = send_on_commit(tasks.record.si("autocommit"))
    assert wait_for_sender()
    (message,) = published()
    assert message.headers["id"] == result.id
    assert message.headers[CORRELATION_HEADER] == ctx.correlation_id


def test_broker_down_at_commit_then_relayed_with_the_same_ids_and_context(published: Drain) -> None:
    down = f"amqp://guest:guest@127.0.0.1:{free_port()}//"
    with publishing_to(down, "unreachable"), bind() as ctx:
        with transaction.atomic():
            result = send_on_commit(chain(tasks.record.si("step-1"), tasks.record.si("step-2")))
            queued_at = ctx.sequence
        assert wait_for_sender(30)
    (row,) = OutboxMessage.objects.all()
    assert row.correlation_id == ctx.correlation_id
    assert row.task_name == "chain(tests.taskapp.tasks.record, tests.taskapp.tasks.record)"
    make_due()
    with publishing_to(down, "unreachable"), pytest.raises(BrokerUnavailable):
        relay_batch()
    assert OutboxMessage.objects.count() == 1, "kept while the broker is down"

    assert relay_batch() == 1
    (message,) = published()
    assert message.headers[CORRELATION_HEADER] == ctx.correlation_id
    assert message.headers[CAUSATION_HEADER] == ctx.hop_id
    assert int(message.headers[SEQUENCE_HEADER]) == queued_at
    remaining = message.payload[2]["chain"]
    assert [step["options"]["task_id"] for step in remaining] == [result.id], "the IDs frozen when queued"
    assert not OutboxMessage.objects.exists()


def test_a_row_the_broker_refuses_waits_on_its_own(published: Drain) -> None:
    with bind(), transaction.atomic():
        send_on_commit(tasks.record.si("fine"))
    assert wait_for_sender()
    assert len(published()) == 1
    OutboxMessage.objects.create(
        task_id="broken",
        task_name="broken",
        signature={
            "task": "tests.taskapp.tasks.record",
            "args": [object.__name__],
            "options": {"expires": "x"},
        },
        created_at=timezone.now(),
        available_at=timezone.now(),
    )
    assert relay_batch() == 0
    (row,) = OutboxMessage.objects.all()
    assert row.attempts == 1
    assert row.last_error
    assert row.available_at > timezone.now()
