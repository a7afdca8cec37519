"""A real worker under a project's text LOGGING: one text stream, the ID on Celery's own lines too."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.worker import CeleryProcess, run_worker
from tests.taskapp import tasks
from tracing_app.context import bind

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def worker(redis_url: str, django_db_setup: None) -> Iterator[CeleryProcess]:
    with run_worker(
        redis_url, env={"DJANGO_SETTINGS_MODULE": "tests.celery.text_logging_settings"}
    ) as running:
        yield running


def line(worker: CeleryProcess, *parts: str) -> str:
    found = worker.wait_for(lambda r: all(part in r.get("unparsed", "") for part in parts), timeout=60)
    return found["unparsed"]


def test_celerys_lines_and_the_tasks_carry_the_id_in_text(worker: CeleryProcess) -> None:
    label = uuid.uuid4().hex
    with bind() as ctx:
        result = tasks.record.delay(label)
    received = line(worker, result.id, "received")
    assert f"[{ctx.correlation_id}]" in received
    assert f"[{ctx.correlation_id}]" in line(worker, result.id, "succeeded")
    assert f"[{ctx.correlation_id}] ran {label}" in line(worker, f"ran {label}")
    assert all("unparsed" in record for record in worker.records()), "no JSON line in a text stream"
