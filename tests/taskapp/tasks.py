"""Tasks the real-worker tests run. Each logs what it saw, so tests read the worker's JSON log."""

from __future__ import annotations

import logging
import os
import signal
import time
from typing import Any

from celery import Task, signals
from celery.utils.log import get_task_logger

from tests.project.celery import app
from tests.taskapp.raw import RAW_QUEUE_ENV, RawMessages
from tracing_app.context import current

logger = logging.getLogger("tests.taskapp")
task_logger = get_task_logger("tests.taskapp.tasks")

if RAW_QUEUE_ENV in os.environ:
    app.steps["consumer"].add(RawMessages)


def seen() -> dict[str, Any]:
    """The context the task body runs in, as the body itself sees it."""
    ctx = current()
    if ctx is None:
        return {"correlation_id": None}
    return {
        "correlation_id": ctx.correlation_id,
        "causation_id": ctx.causation_id,
        "hop_id": ctx.hop_id,
        "sequence": ctx.sequence,
        "sampled": ctx.sampled,
        "origin": ctx.origin,
    }


def _log(task: Task, event: str, label: str, **extra: Any) -> None:
    logger.info(
        "%s %s",
        event,
        label,
        extra={
            "event": event,
            "label": label,
            "seen": seen(),
            "retries": task.request.retries,
            "custom_headers": {
                key: value for key, value in (task.request.headers or {}).items() if key.startswith("x_")
            },
            **extra,
        },
    )


@app.task(bind=True)
def record(self: Task, label: str) -> str:
    _log(self, "ran", label)
    return label


@app.task(bind=True)
def record_task_logger(self: Task, label: str) -> str:
    task_logger.info("ran %s via the task logger", label, extra={"event": "ran", "label": label})
    return label


@app.task(bind=True)
def collect(self: Task, results: list[str], label: str) -> list[str]:
    _log(self, "ran", label, results=sorted(results))
    return results


@app.task(bind=True, max_retries=5)
def flaky(self: Task, label: str, failures: int) -> str:
    _log(self, "attempt", label)
    if self.request.retries < failures:
        raise self.retry(countdown=0, exc=RuntimeError(f"{label} failing on purpose"))
    _log(self, "ran", label)
    return label


@app.task(bind=True, autoretry_for=(ValueError,), max_retries=5, default_retry_delay=0)
def auto_flaky(self: Task, label: str, failures: int) -> str:
    _log(self, "attempt", label)
    if self.request.retries < failures:
        raise ValueError(f"{label} failing on purpose")
    _log(self, "ran", label)
    return label


@app.task(bind=True)
def parent(self: Task, label: str) -> str:
    _log(self, "ran", label)
    record.delay(f"{label}.child")
    return label


@app.task(bind=True)
def failing(self: Task, label: str) -> None:
    _log(self, "ran", label)
    raise RuntimeError(f"{label} fails on purpose")


@app.task(bind=True)
def slow(self: Task, label: str, lines: int, pause: float) -> str:
    """Logs ``lines`` times with a pause between, so tasks overlap on a thread pool."""
    for index in range(lines):
        _log(self, "progress", label, index=index)
        time.sleep(pause)
    return label


@app.task(bind=True)
def lose_worker(self: Task, label: str) -> None:
    """Kills its own pool process, as the OOM killer would."""
    _log(self, "ran", label)
    os.kill(os.getpid(), signal.SIGKILL)


class OwnBase(Task):
    """A task base class of the project's own, not derived from ``app.Task`` (so not from install()'s)."""

    acks_late = True
    reject_on_worker_lost = True


@app.task(bind=True, base=OwnBase)
def lose_worker_once(self: Task, label: str) -> str:
    """Kills its pool process on first delivery; the redelivered message then completes."""
    if not (self.request.delivery_info or {}).get("redelivered"):
        _log(self, "dying", label)
        os.kill(os.getpid(), signal.SIGKILL)
    _log(self, "ran", label)
    return label


@signals.task_success.connect(dispatch_uid="tests.taskapp.after_task")
def after_task(sender: Any = None, **kwargs: Any) -> None:
    """A task_success receiver connected after ``install()``: it runs inside the task's context."""
    task_id = sender.request.id if sender is not None else None
    logger.info("after task %s", task_id, extra={"event": "after", "after_task_id": task_id, "seen": seen()})
