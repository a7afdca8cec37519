"""A task sent through the outbox continues the publishing request's OpenTelemetry trace, even when the
relay publishes it later from a process with no trace of its own."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from kombu import Connection
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.support.worker import publishing_to, unique_queue
from tests.taskapp import tasks
from tracing_app import otel
from tracing_app.context import bind
from tracing_app.outbox import send_on_commit
from tracing_app.outbox.enqueue import wait_for_sender
from tracing_app.outbox.models import OutboxMessage
from tracing_app.outbox.relay import relay_batch

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def queue() -> Iterator[str]:
    name = unique_queue("tracing-outbox-otel")
    with publishing_to("memory://", name, "cache+memory://"):
        yield name


def take(queue: str) -> dict[str, object]:
    with Connection("memory://") as connection:
        message = connection.SimpleQueue(queue).get(timeout=5)
        message.ack()
        return dict(message.headers)


def test_the_relay_publishes_in_the_requests_trace(spans: InMemorySpanExporter, queue: str) -> None:
    tracer = otel.tracer()
    assert tracer is not None
    with bind(), tracer.start_as_current_span("checkout") as span:
        trace_id = f"{span.get_span_context().trace_id:032x}"
        with transaction.atomic():
            send_on_commit(tasks.record.si("otel"))
            captured = OutboxMessage.objects.get().context
        assert wait_for_sender()
    assert str(take(queue)["traceparent"]).split("-")[1] == trace_id

    # The same message left to a relay, which publishes outside any trace: it still continues the request's.
    OutboxMessage.objects.create(
        task_id="relayed",
        task_name=tasks.record.name,
        signature=dict(tasks.record.si("relayed")),
        context=captured,
        created_at=timezone.now(),
        available_at=timezone.now() - timedelta(seconds=1),
    )
    assert relay_batch() == 1
    assert str(take(queue)["traceparent"]).split("-")[1] == trace_id
