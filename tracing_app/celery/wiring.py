"""``install(app)``: the one call that wires tracing_app into a Celery app."""

from __future__ import annotations

from celery import Celery
from celery.app.amqp import AMQP

from tracing_app.celery import pipeline
from tracing_app.celery.publish import TracedAMQP
from tracing_app.celery.worker import TracedRequest, TracingStrategies, uses_default_request
from tracing_app.outbox.worker import OutboxRelayStep

_state = {"installed": False}


def install(app: Celery) -> None:
    """Carry the correlation ID through ``app``'s tasks and worker logs. Safe to call more than once.

    Call it where the Celery app is created (``proj/celery.py``), after ``config_from_object``.
    """
    pipeline.connect()
    consumer_steps = app.steps["consumer"]
    if TracingStrategies not in consumer_steps:
        consumer_steps.add(TracingStrategies)
    app.steps["worker"].add(OutboxRelayStep)
    task_base = app.Task
    if uses_default_request(task_base):
        # celery-types declares Request as a str; Celery takes a class or a dotted path.
        task_base.Request = TracedRequest  # type: ignore[assignment]
    if app.amqp_cls in (AMQP, "celery.app.amqp:AMQP"):
        app.amqp_cls = TracedAMQP  # type: ignore[assignment]  # a class, as Celery accepts
        # Built already when something was sent before install(): built again, with the new class.
        vars(app).pop("amqp", None)
    _state["installed"] = True


def is_installed() -> bool:
    """Whether :func:`install` has run in this process."""
    return bool(_state["installed"])
