"""One format per worker stream: what Celery's logging setup signals do to the handlers they find."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from celery import signals
from celery.utils.log import ColorFormatter
from django.test import override_settings

from tracing_app.conf import app_settings
from tracing_app.context import bind
from tracing_app.logs import JsonFormatter

CELERY_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"


@pytest.fixture
def streams() -> Iterator[tuple[logging.Logger, io.StringIO, logging.Logger, io.StringIO]]:
    """A logger set up the way ``celery worker`` sets up root, and a project logger with its own
    text handler (as LOGGING leaves it)."""
    made = []
    for name, formatter in (
        ("tests.worker-logs.celery", ColorFormatter(CELERY_FORMAT, use_color=False)),
        ("tests.worker-logs.project", logging.Formatter("%(levelname)s [%(correlation_id)s] %(message)s")),
    ):
        stream = io.StringIO()
        target = logging.getLogger(name)
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        target.handlers = [handler]
        target.propagate = False
        target.setLevel(logging.INFO)
        made += [target, stream]
    yield tuple(made)  # type: ignore[misc]
    for target in made[::2]:
        target.handlers = []


def setup(celery_logger: logging.Logger, json_logs: bool | None) -> None:
    with override_settings(TRACING_APP={**app_settings.user_settings(), "CELERY_JSON_LOGS": json_logs}):
        signals.after_setup_logger.send(
            sender=None,
            logger=celery_logger,
            loglevel=logging.INFO,
            logfile=None,
            format=CELERY_FORMAT,
            colorize=False,
        )


def test_text_mode_puts_the_id_in_celerys_lines_and_keeps_the_projects_format(streams) -> None:
    celery_logger, celery_stream, project_logger, project_stream = streams
    setup(celery_logger, json_logs=False)
    with bind() as ctx:
        celery_logger.info(
            "Task %s[%s] received", "app.add", "t-1", extra={"data": {"id": "t-1", "name": "app.add"}}
        )
        project_logger.info("placed")
    assert celery_stream.getvalue().rstrip().endswith(f"[{ctx.correlation_id}] Task app.add[t-1] received")
    assert project_stream.getvalue() == f"INFO [{ctx.correlation_id}] placed\n"


def test_json_mode_makes_every_stream_json(streams) -> None:
    celery_logger, celery_stream, project_logger, project_stream = streams
    setup(celery_logger, json_logs=True)
    assert isinstance(project_logger.handlers[0].formatter, JsonFormatter)
    with bind() as ctx:
        celery_logger.info("Task received", extra={"data": {"id": "t-2", "name": "app.add"}})
        project_logger.info("placed")
    celery_line = json.loads(celery_stream.getvalue())
    assert (celery_line["correlation_id"], celery_line["task_id"], celery_line["task_name"]) == (
        ctx.correlation_id,
        "t-2",
        "app.add",
    )
    assert json.loads(project_stream.getvalue())["correlation_id"] == ctx.correlation_id


@pytest.mark.parametrize(
    ("logging_config", "json_expected"),
    [
        ({"version": 1, "formatters": {"j": {"()": "tracing_app.logs.JsonFormatter"}}}, True),
        ({"version": 1, "formatters": {"t": {"format": "%(message)s"}}}, False),
    ],
)
def test_unset_follows_the_projects_logging(streams, logging_config, json_expected) -> None:
    celery_logger, *_ = streams
    with override_settings(LOGGING=logging_config):
        setup(celery_logger, json_logs=None)
    assert isinstance(celery_logger.handlers[0].formatter, JsonFormatter) is json_expected
