"""Tasks for the real-worker trace test: a parent that publishes a child; both log what they carry.

The worker imports this module with ``--include tests.otel.tasks``.
"""

import logging

from celery import shared_task
from opentelemetry import baggage

from tracing_app import otel

logger = logging.getLogger("tests.otel.tasks")


def _log(what: str, request) -> None:
    # ``baggage`` as it arrived in the message headers, and as current while the task runs.
    logger.info(
        "otel %s task",
        what,
        extra={
            "message_baggage": getattr(request, "baggage", None),
            "current_baggage": baggage.get_baggage(otel.BAGGAGE_KEY),
            "traceparent": otel.current_traceparent(),
        },
    )


@shared_task(bind=True, name="tests.otel.parent")
def parent(self) -> None:
    _log("parent", self.request)
    child.apply_async()


@shared_task(bind=True, name="tests.otel.child")
def child(self) -> None:
    _log("child", self.request)
