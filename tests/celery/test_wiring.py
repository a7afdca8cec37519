"""The one wiring call, the system check that notices its absence, and the worker log hooks."""

from __future__ import annotations

import io
import json
import logging

import pytest
from celery import signals
from django.core.checks.registry import registry
from django.test import override_settings

from settings.celery import app
from tests.taskapp import tasks
from tracing_app import celery as tracing_celery
from tracing_app.celery import TracedRequest, TracingStrategies, check_celery_installed, install
from tracing_app.context import bind
from tracing_app.logs import CorrelationIdFilter, JsonFormatter


def receivers_of(signal: signals.Signal, name: str) -> int:
    uid = f"tracing_app.celery.{name}"
    return sum(1 for lookup_key, _ in signal.receivers if lookup_key[0] == uid)


def test_install_is_idempotent_and_wires_everything() -> None:
    install(app)
    install(app)
    assert receivers_of(signals.before_task_publish, "_on_before_task_publish") == 1
    assert receivers_of(signals.task_prerun, "_on_task_prerun") == 1
    assert receivers_of(signals.task_postrun, "_on_task_postrun") == 1
    assert receivers_of(signals.after_setup_logger, "_on_after_setup_logger") == 1
    assert receivers_of(signals.after_setup_task_logger, "_on_after_setup_task_logger") == 1
    assert list(app.steps["consumer"]).count(TracingStrategies) == 1
    assert tasks.record.Request is TracedRequest


def test_system_check_warns_when_celery_is_not_wired(monkeypatch: pytest.MonkeyPatch) -> None:
    assert check_celery_installed in registry.get_checks()
    assert check_celery_installed() == []
    monkeypatch.setitem(tracing_celery._state, "installed", False)
    (warning,) = check_celery_installed()
    assert warning.id == "tracing_app.W301"
    assert "install(app)" in warning.hint


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
