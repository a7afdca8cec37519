"""A raw kombu consumer inside the worker: messages in tracing_app's envelope, no Celery task.

Workers started with ``TRACING_TEST_RAW_QUEUE=<name>`` in their environment consume that queue.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import bootsteps
from kombu import Consumer, Queue

from tracing_app import messaging
from tracing_app.context import current

RAW_QUEUE_ENV = "TRACING_TEST_RAW_QUEUE"
logger = logging.getLogger("tests.taskapp.raw")


def raw_queue(name: str) -> Queue:
    """A queue on the default exchange, as a plain kombu service would use."""
    return Queue(name, routing_key=name)


@messaging.handler
def on_raw_message(payload: Any, message: Any) -> None:
    ctx = current()
    label = payload.get("label") if isinstance(payload, dict) else None
    logger.info(
        "raw message %s",
        label,
        extra={
            "event": "raw",
            "label": label,
            "seen": {
                "correlation_id": ctx.correlation_id,
                "causation_id": ctx.causation_id,
                "hop_id": ctx.hop_id,
                "sequence": ctx.sequence,
                "origin": ctx.origin,
            }
            if ctx
            else None,
        },
    )
    message.ack()


class RawMessages(bootsteps.ConsumerStep):
    def get_consumers(self, channel: Any) -> list[Consumer]:
        queue = raw_queue(os.environ[RAW_QUEUE_ENV])
        return [Consumer(channel, queues=[queue], callbacks=[on_raw_message], accept=["json"])]
