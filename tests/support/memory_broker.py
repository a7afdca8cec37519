"""``published``: publish through the real Celery/kombu path into kombu's in-process memory transport."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from queue import Empty

import pytest
from kombu import Connection, Message

from tests.support.worker import publishing_to, unique_queue


@pytest.fixture
def published() -> Iterator[Callable[[], list[Message]]]:
    """Publish through the real Celery/kombu code path into kombu's in-process memory transport.

    Returns a function that takes the messages published so far off the queue.
    """
    queue = unique_queue("tracing-unit")

    def drain() -> list[Message]:
        messages = []
        with Connection("memory://") as connection:
            simple = connection.SimpleQueue(queue)
            while True:
                try:
                    message = simple.get(block=False)
                except Empty:
                    return messages
                message.ack()
                messages.append(message)

    with publishing_to("memory://", queue, "cache+memory://"):
        yield drain
