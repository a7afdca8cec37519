"""Back-to-back and overlapping tasks on one worker process never see each other's correlation ID:
prefork (one child), threads (two threads) and solo pools, each a real ``celery worker``.

A leak shows up two ways: a line of one task carrying another's ID, or tracing_app's warning that a
task started while some other transaction was still current (the reset in task_postrun failed).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.worker import CeleryProcess, run_worker
from tests.taskapp import tasks
from tracing_app.context import bind
from tracing_app.ids import is_valid_id

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

Record = dict[str, Any]


@pytest.fixture(scope="module", params=["prefork", "threads", "solo"])
def worker(request: pytest.FixtureRequest, redis_url: str, django_db_setup: None) -> Iterator[CeleryProcess]:
    concurrency = 2 if request.param == "threads" else 1
    with run_worker(redis_url, pool=request.param, concurrency=concurrency) as running:
        yield running


def lines_of(records: list[Record], task_id: str) -> list[Record]:
    """Every line written for one task: its body, Celery's received/succeeded lines, the after probe."""
    return [
        r
        for r in records
        if r.get("task_id") == task_id
        or (isinstance(r.get("data"), dict) and r["data"].get("id") == task_id)
        or r.get("after_task_id") == task_id
    ]


def test_back_to_back_tasks_never_share_an_id(worker: CeleryProcess) -> None:
    expected: dict[str, str | None] = {}
    for n in range(6):
        label = f"{worker.pool}-back-to-back-{n}"
        if n % 2:
            expected[tasks.record.delay(label).id] = None  # published outside any transaction
        else:
            with bind() as ctx:
                expected[tasks.record.delay(label).id] = ctx.correlation_id
    ran = worker.wait_for_all(
        lambda r: r.get("event") == "ran" and r["label"].startswith(f"{worker.pool}-back-to-back-"), 6
    )
    assert len({r["process"] for r in ran}) == 1, "all ran on one worker process"
    worker.wait_for_all(lambda r: r.get("event") == "after" and r["after_task_id"] in expected, 6)
    records = worker.records()

    seen_ids = []
    for task_id, correlation_id in expected.items():
        lines = lines_of(records, task_id)
        body = [r for r in lines if r.get("event") == "ran"]
        assert len(body) == 1
        own_id = body[0]["correlation_id"]
        if correlation_id is None:
            assert is_valid_id(own_id)
            assert body[0]["seen"]["origin"] == "publish", "minted when published without a transaction"
        else:
            assert own_id == correlation_id
        seen_ids.append(own_id)
        for line in lines:
            # Including the task_success probe: receivers connected after install() see the task's context.
            assert line["correlation_id"] == own_id, line
    assert len(set(seen_ids)) == len(seen_ids), "every task had its own transaction"
    assert_nothing_leaked(records)


def assert_nothing_leaked(records: list[Record]) -> None:
    """tracing_app warns when a task starts while another transaction is still current."""
    leaks = [r for r in records if r["logger"] == "tracing_app.celery" and r["level"] == "WARNING"]
    assert leaks == []


def test_overlapping_tasks_keep_their_own_ids(worker: CeleryProcess) -> None:
    expected = {}
    for n in range(2):
        with bind() as ctx:
            expected[tasks.slow.delay(f"{worker.pool}-overlap-{n}", 8, 0.05).id] = ctx.correlation_id
    progress = worker.wait_for_all(
        lambda r: r.get("event") == "progress" and r["label"].startswith(f"{worker.pool}-overlap-"), 16
    )
    for record in progress:
        assert record["correlation_id"] == expected[record["task_id"]], record
        assert record["seen"]["correlation_id"] == expected[record["task_id"]], record
    order = [record["task_id"] for record in progress]
    if worker.pool == "threads":
        first, second = order[0], next(task_id for task_id in order if task_id != order[0])
        assert order.index(second) < len(order) - 1 - order[::-1].index(first), "the two tasks overlapped"
        assert len({r["thread"] for r in progress}) == 2
    assert_nothing_leaked(worker.records())
