"""The one wiring call and the worker log hooks."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from celery import signals
from django.test import override_settings

from tests.project.celery import app
from tests.taskapp import tasks
from tracing_app.celery import TracedRequest, TracingStrategies, install, is_installed
from tracing_app.celery.pipeline import RECEIVERS, dispatch_uid
from tracing_app.context import bind
from tracing_app.logs import CorrelationIdFilter, JsonFormatter


def ours_on(signal: Any) -> list[str]:
    """Our dispatch_uids on a Celery or Django signal (their receiver entries differ in length)."""
    uids = [str(entry[0][0]) for entry in signal.receivers]
    return [uid for uid in uids if uid.startswith("tracing_app.")]


def test_install_is_idempotent_and_wires_everything() -> None:
    install(app)
    install(app)
    assert is_installed()
    for signal, receiver in RECEIVERS:
        assert ours_on(signal) == [dispatch_uid(receiver)]
    assert list(app.steps["consumer"]).count(TracingStrategies) == 1
    assert tasks.record.Request is TracedRequest


def test_one_receiver_per_task_signal_whatever_else_is_enabled() -> None:
    """Trace events and OpenTelemetry are called by the pipeline, never connected on their own."""
    for signal in (
        signals.task_prerun,
        signals.task_postrun,
        signals.task_failure,
        signals.after_task_publish,
    ):
        assert len(ours_on(signal)) == 1


def make_logger(name: str) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    target = logging.getLogger(name)
    target.handlers = [logging.StreamHandler(stream)]
    target.propagate = False
    target.setLevel(logging.INFO)
    return target, stream


def test_worker_handlers_get_the_filter_and_json(request: pytest.FixtureRequest) -> None:
    target, stream = make_logger("tests.celery.worker-root")
    request.addfinalizer(lambda: setattr(target, "handlers", []))
    signals.after_setup_logger.send(sender=None, logger=target, loglevel=logging.INFO, logfile=None)
    signals.after_setup_logger.send(sender=None, logger=target, loglevel=logging.INFO, logfile=None)
    (handler,) = target.handlers
    assert sum(isinstance(f, CorrelationIdFilter) for f in handler.filters) == 1
    assert isinstance(handler.formatter, JsonFormatter)
    with bind() as ctx:
        target.info("inside")
    target.info("outside")
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["correlation_id"] == ctx.correlation_id
    assert inside["task_id"] == "-"
    assert outside["correlation_id"] == "-"


def test_task_logger_keeps_celerys_format_when_json_is_off(request: pytest.FixtureRequest) -> None:
    target, stream = make_logger("tests.celery.worker-task")
    request.addfinalizer(lambda: setattr(target, "handlers", []))
    formatter = logging.Formatter("%(correlation_id)s %(message)s")
    target.handlers[0].setFormatter(formatter)
    with override_settings(TRACING_APP={"CELERY_JSON_LOGS": False}):
        signals.after_setup_task_logger.send(sender=None, logger=target, loglevel=logging.INFO, logfile=None)
    assert target.handlers[0].formatter is formatter
    with bind() as ctx:
        target.info("plain")
    assert stream.getvalue() == f"{ctx.correlation_id} plain\n"
