"""Raw messages (kombu, without Celery tasks) in one body layout that carries the transaction.

Every message body is::

    {
        "metadata": {
            "correlation_id": "01J...",     # the transaction's ID
            "causation_id": "01J..." | null, # the publisher's hop ID (request, task or message)
            "message_id": "01J...",         # this message's own ID: the consumer's hop ID
            "sequence": 7,                  # the transaction's Lamport clock, ticked by the publisher
            "sampled": true,                # the sampling decision made once at the edge
            "trace_parent": "00-...-01" | null,  # W3C traceparent of the publishing span, if any
            "timestamp": "2025-01-01T12:00:00.000+00:00"  # shown, never used for ordering
        },
        "payload": {...}
    }

Publishing::

    with app.producer_or_acquire() as producer:       # or any kombu.Producer
        messaging.publish(producer, {"order": 42}, routing_key="orders", declare=[orders_queue])

Consuming (a kombu consumer callback)::

    @messaging.handler
    def on_order(payload, message):
        ...                      # runs inside the publisher's transaction; logs carry its ID
        message.ack()

    Consumer(channel, queues=[orders_queue], callbacks=[on_order])

A body with missing or invalid metadata is still handed to the handler (a body without the
``metadata``/``payload`` layout is passed whole as the payload), under a fresh correlation ID; the
rejected metadata is logged, escaped. Nothing is dropped because of its metadata.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from tracing_app import ids, otel
from tracing_app.context import TraceContext, activate, current, deactivate, from_carrier

__all__ = ["Received", "handler", "message_body", "publish", "read_message_body"]

R = TypeVar("R")
logger = logging.getLogger("tracing_app.messaging")

_TRACE_PARENT_RE = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
_MAX_SEQUENCE = 2**63 - 1


def message_body(payload: Any) -> dict[str, Any]:
    """The body of one outgoing message carrying ``payload``, in the current transaction (or a new one)."""
    ctx = current()
    if ctx is None:
        # The message starts a transaction: the consumer's hop is caused by nothing we know of.
        ctx = from_carrier(None, origin="message")
        causation_id = None
    else:
        causation_id = ctx.hop_id
    return {
        "metadata": {
            "correlation_id": ctx.correlation_id,
            "causation_id": causation_id,
            "message_id": ids.new_id(),
            "sequence": ctx.tick(),
            "sampled": ctx.sampled,
            "trace_parent": otel.current_traceparent(),
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        },
        "payload": payload,
    }


def publish(producer: Any, payload: Any, **publish_options: Any) -> dict[str, Any]:
    """Publish ``payload`` in a :func:`message_body` with a kombu ``producer``; returns the metadata sent.

    ``publish_options`` go to ``Producer.publish`` (``exchange``, ``routing_key``, ``declare``, ...).
    """
    body = message_body(payload)
    producer.publish(body, serializer="json", **publish_options)
    return body["metadata"]


class Received:
    """A consumed body taken apart: the context to run in, the payload, and what was wrong, if anything."""

    __slots__ = ("context", "payload", "problem", "trace_parent")

    def __init__(self, context: TraceContext, payload: Any, problem: str | None, trace_parent: str | None):
        self.context = context
        self.payload = payload
        self.problem = problem
        self.trace_parent = trace_parent


def read_message_body(body: Any) -> Received:
    """Read a consumed message body. Never raises: bad metadata yields a fresh ID and a ``problem``."""
    if isinstance(body, dict) and "payload" in body:
        payload = body["payload"]
        metadata = body.get("metadata")
    else:
        return Received(_fresh_context(), body, f"not a message body: {ids.safe_repr(body, 200)}", None)
    if not isinstance(metadata, dict):
        return Received(
            _fresh_context(), payload, f"metadata is not an object: {ids.safe_repr(metadata)}", None
        )

    problems = []
    message_id = metadata.get("message_id")
    hop_id = message_id if isinstance(message_id, str) and ids.is_valid_id(message_id) else None
    correlation_id = metadata.get("correlation_id")
    if not (isinstance(correlation_id, str) and ids.is_valid_id(correlation_id)):
        problems.append(f"correlation_id {ids.safe_repr(correlation_id)}")
        ctx = _fresh_context(hop_id)
    else:
        sampled = metadata.get("sampled")
        causation_id = metadata.get("causation_id")
        if not (isinstance(causation_id, str) and ids.is_valid_id(causation_id)):
            if causation_id is not None:
                problems.append(f"causation_id {ids.safe_repr(causation_id)}")
            causation_id = None
        sequence = metadata.get("sequence")
        if not (
            isinstance(sequence, int) and not isinstance(sequence, bool) and 0 <= sequence <= _MAX_SEQUENCE
        ):
            if sequence is not None:
                problems.append(f"sequence {ids.safe_repr(sequence)}")
            sequence = 0
        ctx = from_carrier(
            correlation_id,
            hop_id=hop_id or ids.new_id(),
            causation_id=causation_id,
            sequence=sequence,
            sampled=sampled if isinstance(sampled, bool) else None,
            origin="message",
        )
    trace_parent = metadata.get("trace_parent")
    if not (isinstance(trace_parent, str) and _TRACE_PARENT_RE.fullmatch(trace_parent)):
        if trace_parent is not None:
            problems.append(f"trace_parent {ids.safe_repr(trace_parent)}")
        trace_parent = None
    return Received(ctx, payload, "invalid " + ", ".join(problems) if problems else None, trace_parent)


def _fresh_context(hop_id: str | None = None) -> TraceContext:
    return from_carrier(None, hop_id=hop_id, origin="message")


def handler(fn: Callable[[Any, Any], R]) -> Callable[[Any, Any], R]:
    """Wrap a consumer callback ``fn(payload, message)`` to run inside the message's transaction.

    The result is a kombu callback ``(body, message)``. The context is reset when ``fn`` returns or
    raises; acknowledging stays ``fn``'s job.
    """

    def on_message(body: Any, message: Any) -> R:
        received = read_message_body(body)
        token = activate(received.context)
        try:
            if received.problem is not None:
                logger.warning(
                    "Message metadata rejected (%s); processing it under correlation ID %s",
                    received.problem,
                    received.context.correlation_id,
                )
            # With OpenTelemetry on, the handler runs in a span continuing the publisher's trace.
            with otel.continue_trace(received.trace_parent, f"process {on_message.__name__}"):
                return fn(received.payload, message)
        finally:
            deactivate(token)

    on_message.__name__ = getattr(fn, "__name__", "on_message")
    on_message.__doc__ = fn.__doc__
    return on_message
