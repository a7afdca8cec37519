"""Raw kombu messages in a traced message body: publishing, consuming, and bodies with bad metadata."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

import pytest
from kombu import Connection, Consumer, Producer, Queue
from opentelemetry.sdk.trace import TracerProvider

from tracing_app import ids, messaging
from tracing_app.context import bind, current


def test_message_body_carries_the_transaction() -> None:
    with bind() as ctx:
        first = messaging.message_body({"order": 1})
        second = messaging.message_body({"order": 2})
    metadata = first["metadata"]
    assert first["payload"] == {"order": 1}
    assert metadata["correlation_id"] == ctx.correlation_id
    assert metadata["causation_id"] == ctx.hop_id
    assert ids.is_valid_id(metadata["message_id"])
    assert metadata["message_id"] != second["metadata"]["message_id"]
    assert (metadata["sequence"], second["metadata"]["sequence"]) == (1, 2)
    assert metadata["sampled"] is True
    assert metadata["trace_parent"] is None
    assert datetime.fromisoformat(metadata["timestamp"]).tzinfo is not None


def test_message_body_outside_a_transaction_starts_one() -> None:
    metadata = messaging.message_body("x")["metadata"]
    assert ids.is_valid_id(metadata["correlation_id"])
    assert metadata["causation_id"] is None
    assert metadata["sequence"] == 1


def test_trace_parent_of_the_publishing_span() -> None:
    tracer = TracerProvider().get_tracer("tests")
    with tracer.start_as_current_span("publish") as span:
        metadata = messaging.message_body({})["metadata"]
    context = span.get_span_context()
    flags = int(context.trace_flags)
    assert flags & 0x01, "sampled"
    assert metadata["trace_parent"] == f"00-{context.trace_id:032x}-{context.span_id:016x}-{flags:02x}"
    received = messaging.read_message_body({"metadata": metadata, "payload": {}})
    assert received.trace_parent == metadata["trace_parent"]
    assert received.problem is None


def test_publish_and_consume_over_kombu() -> None:
    queue = Queue(f"tracing-unit-raw-{uuid.uuid4().hex[:8]}")
    handled: list[dict[str, Any]] = []

    @messaging.handler
    def on_message(payload: Any, message: Any) -> None:
        ctx = current()
        handled.append({"payload": payload, "correlation_id": ctx.correlation_id, "ctx": ctx})
        message.ack()

    with Connection("memory://") as connection:
        with bind() as ctx:
            sent = messaging.publish(
                Producer(connection), {"order": 42}, routing_key=queue.name, declare=[queue]
            )
        with Consumer(connection, queues=[queue], callbacks=[on_message], accept=["json"]):
            connection.drain_events(timeout=5)
    (only,) = handled
    assert only["payload"] == {"order": 42}
    assert only["correlation_id"] == ctx.correlation_id
    assert only["ctx"].causation_id == ctx.hop_id
    assert only["ctx"].hop_id == sent["message_id"]
    assert only["ctx"].sequence == sent["sequence"]
    assert only["ctx"].origin == "message"
    assert current() is None


HOSTILE = 'evil\n{"level": "CRITICAL", "message": "forged"}'
BAD_BODIES = {
    "not-a-message-body": ({"order": 1}, {"order": 1}),
    "plain-string": (HOSTILE, HOSTILE),
    "metadata-missing": ({"payload": {"order": 1}}, {"order": 1}),
    "metadata-not-an-object": ({"metadata": HOSTILE, "payload": 1}, 1),
    "correlation-hostile": ({"metadata": {"correlation_id": HOSTILE}, "payload": 1}, 1),
    "correlation-not-a-string": ({"metadata": {"correlation_id": 12}, "payload": 1}, 1),
}


@pytest.mark.parametrize(("body", "payload"), BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_metadata_is_processed_under_a_fresh_id(
    body: Any, payload: Any, caplog: pytest.LogCaptureFixture
) -> None:
    calls = []

    @messaging.handler
    def on_message(received: Any, message: Any) -> str:
        calls.append((received, current().correlation_id))
        return "done"

    with caplog.at_level(logging.WARNING, logger="tracing_app.messaging"):
        assert on_message(body, None) == "done"
    ((received, correlation_id),) = calls
    assert received == payload, "nothing is lost"
    assert ids.is_valid_id(correlation_id)
    (record,) = caplog.records
    text = record.getMessage()
    assert correlation_id in text
    assert "\n" not in text
    if "evil" in str(body):
        assert "evil\\n{" in text, "the original is logged escaped"
    assert current() is None


def test_bad_companion_fields_keep_the_valid_correlation_id(caplog: pytest.LogCaptureFixture) -> None:
    correlation_id = ids.new_id()
    body = {
        "metadata": {
            "correlation_id": correlation_id,
            "causation_id": "bad causation!",
            "sequence": True,
            "trace_parent": "00-nope",
            "message_id": "not an id!",
            "sampled": "yes",
        },
        "payload": {},
    }
    received = messaging.read_message_body(body)
    assert received.context.correlation_id == correlation_id
    assert received.context.causation_id is None
    assert received.context.sequence == 0
    assert ids.is_valid_id(received.context.hop_id)
    assert received.trace_parent is None
    assert received.context.sampled is True
    assert "causation_id" in received.problem
    assert "sequence" in received.problem
    assert "trace_parent" in received.problem


def test_handler_resets_the_context_when_the_callback_raises() -> None:
    @messaging.handler
    def on_message(payload: Any, message: Any) -> None:
        raise ValueError("boom")

    with bind() as ctx:
        with pytest.raises(ValueError, match="boom"):
            on_message(messaging.message_body({}), None)
        assert current() is ctx
