"""Task events recorded in-process, for tasks run eagerly (``.apply()``) inside a transaction.

The real worker's events are covered end to end in test_end_to_end.py; these pin the receivers' own
behaviour where a worker cannot be observed as closely.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.traces import tasks
from tests.traces.conftest import events
from tracing_app.context import bind, current
from tracing_app.traces import recorder

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tracing")]


def test_an_eager_task_is_a_child_hop_of_its_caller():
    with bind(origin="http") as ctx:
        result = tasks.charge_card.apply(kwargs={"order_id": "ord-5"})
        assert current() is ctx
        recorder.record("log", name="after the task")
    recorder.flush()
    assert result.failed()
    started, failed, after = events(ctx.correlation_id)
    assert (started.kind, failed.kind) == ("task.started", "task.failed")
    assert started.hop_id == result.id and started.causation_id == ctx.hop_id
    assert started.attributes["kwargs"] == {"order_id": "ord-5"}
    assert failed.error and failed.duration_ms is not None
    assert failed.attributes["message"] == "card declined for order ord-5"
    # Like a reply: what the caller does next follows everything the eager task did.
    assert after.sequence > failed.sequence


def test_task_arguments_can_be_left_out(settings):
    settings.TRACING_APP = {**settings.TRACING_APP, "TRACE_TASK_ARGUMENTS": False}
    with bind() as ctx:
        tasks.send_confirmation.apply(kwargs={"order_id": "private"})
    recorder.flush()
    started = events(ctx.correlation_id)[0]
    assert "kwargs" not in started.attributes and "args" not in started.attributes


def test_a_published_task_is_timed_when_it_left_not_when_the_broker_answered():
    # A worker can start the task before the publisher hears back from the broker: the event must not
    # come after the task it caused.
    from celery import signals

    headers = {"id": "f3b5c1de-0000-4000-8000-000000000001", "task": "tests.traces.tasks.charge_card"}
    with bind(origin="http") as ctx:
        signals.before_task_publish.send(sender=headers["task"], headers=headers, body=((), {}, {}))
        left = datetime.now(UTC)
        signals.after_task_publish.send(sender=headers["task"], headers=headers, routing_key="celery")
    recorder.flush()
    (published,) = [e for e in events(ctx.correlation_id) if e.kind == "task.published"]
    assert published.timestamp <= left
