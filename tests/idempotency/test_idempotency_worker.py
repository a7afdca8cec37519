"""Real ``celery worker`` processes on RabbitMQ: retries, redelivery after SIGKILL, exactly one effect."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.idempotency.models import Effect
from tests.support.waiting import wait_until
from tests.support.worker import CeleryProcess, run_worker
from tests.taskapp.idempotency_tasks import effect_then_hang, effect_then_retry
from tracing_app.context import bind
from tracing_app.idempotency.models import IdempotencyRecord

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

INCLUDE = ("--include", "tests.taskapp.idempotency_tasks")


@pytest.fixture
def worker(rabbitmq_url: str, django_db_setup: None) -> Iterator[CeleryProcess]:
    with run_worker(rabbitmq_url, extra_args=INCLUDE) as running:
        yield running


@pytest.fixture
def label() -> str:
    return f"effect-{uuid.uuid4().hex[:8]}"


def pid_in(marker: Path) -> int:
    """The pid the hanging task wrote, once it is there."""
    return int(
        wait_until(lambda: marker.exists() and marker.read_text(), timeout=60, what="the task to hang")
    )


def killed_group(worker: CeleryProcess) -> None:
    """SIGKILL the worker's main process and its pool children at once: nothing gets to ack or clean up."""
    os.killpg(worker.pid, signal.SIGKILL)
    worker.process.wait(30)


def test_retry_after_the_effect_committed_does_not_repeat_it(worker: CeleryProcess, label: str) -> None:
    with bind():
        result = effect_then_retry.delay(label)
    assert result.get(timeout=60) == {"effect_written_on_try": 0, "finished_on_try": 1}
    assert list(Effect.objects.filter(label=label).values_list("note", flat=True)) == ["try 0"]
    record = IdempotencyRecord.objects.get(operation="effect")
    assert (record.state, record.replay_count, record.attempts) == ("completed", 1, 1)


def test_pool_child_killed_mid_task_is_redelivered_and_takes_over(
    worker: CeleryProcess, label: str, tmp_path: Path
) -> None:
    """acks_late + task_reject_on_worker_lost: the main process requeues the task of a child killed with
    SIGKILL. The killed attempt's uncommitted effect is gone; the redelivery waits for its lease to
    expire, takes the key over and writes the effect once."""
    marker = tmp_path / "hang"
    with bind():
        result = effect_then_hang.delay(label, str(marker), "before_commit")
    child = pid_in(marker)
    assert child != worker.pid
    record = IdempotencyRecord.objects.get()
    assert record.state == "in_progress"
    assert not Effect.objects.filter(label=label).exists(), "uncommitted while the task hangs"

    os.kill(child, signal.SIGKILL)
    output = result.get(timeout=60)
    assert output["label"] == label
    assert output["pid"] != child
    assert Effect.objects.filter(label=label).count() == 1
    record.refresh_from_db()
    assert (record.state, record.attempts, record.replay_count) == ("completed", 2, 0)


def test_whole_worker_killed_before_commit(
    rabbitmq_url: str, django_db_setup: None, label: str, tmp_path: Path
) -> None:
    marker = tmp_path / "hang"
    with run_worker(rabbitmq_url, extra_args=INCLUDE) as first:
        with bind():
            result = effect_then_hang.delay(label, str(marker), "before_commit")
        pid_in(marker)
        killed_group(first)
        with run_worker(
            rabbitmq_url, queue=first.queue, result_backend=first.result_backend, extra_args=INCLUDE
        ) as second:
            output = result.get(timeout=60)
            assert output["label"] == label
            assert second.pid != first.pid
    assert Effect.objects.filter(label=label).count() == 1
    record = IdempotencyRecord.objects.get()
    assert (record.state, record.attempts, record.replay_count) == ("completed", 2, 0)


def test_whole_worker_killed_after_commit_before_ack(
    rabbitmq_url: str, django_db_setup: None, label: str, tmp_path: Path
) -> None:
    """The effect and its record committed, the message was not acked: RabbitMQ redelivers it, and the
    redelivered task returns the stored result without writing again."""
    marker = tmp_path / "hang"
    with run_worker(rabbitmq_url, extra_args=INCLUDE) as first:
        with bind():
            result = effect_then_hang.delay(label, str(marker), "after_commit")
        first_pid = pid_in(marker)
        assert IdempotencyRecord.objects.get().state == "completed"
        killed_group(first)
        with run_worker(
            rabbitmq_url, queue=first.queue, result_backend=first.result_backend, extra_args=INCLUDE
        ) as second:
            output: dict[str, Any] = result.get(timeout=60)
            assert second.pid != first.pid
    assert output == {"label": label, "pid": first_pid}, "the first run's stored result"
    assert Effect.objects.filter(label=label).count() == 1
    record = IdempotencyRecord.objects.get()
    assert (record.state, record.attempts, record.replay_count) == ("completed", 1, 1)
