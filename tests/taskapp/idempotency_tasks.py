"""Idempotent tasks for tests/idempotency. Workers import this module with ``--include``.

Each task leaves one Effect row each time its side effect really runs, so a test counts them.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from celery import Task
from django.db import transaction

from tests.idempotency.models import Effect
from tests.project.celery import app
from tracing_app.idempotency.tasks import idempotent_block, idempotent_task

# Short, so a redelivered task takes over from a killed one within seconds.
LEASE = 2.0


def hang(marker: Path) -> None:
    """Tell the test where we are (the marker holds this process's pid), then wait to be killed."""
    marker.write_text(str(os.getpid()))
    threading.Event().wait(120)


@app.task(bind=True, acks_late=True, reject_on_worker_lost=True)
@idempotent_task(lease=LEASE)
def effect_then_hang(self: Task, label: str, marker: str, when: str) -> dict[str, Any]:
    """Writes its Effect, then on the first delivery hangs: "before_commit" inside the transaction that
    also completes the record, "after_commit" once both are committed but before the message is acked."""
    Effect.objects.create(label=label, note=f"pid {os.getpid()}")
    path = Path(marker)
    if not path.exists():
        if when == "before_commit":
            hang(path)
        else:
            transaction.on_commit(lambda: hang(path))
    return {"label": label, "pid": os.getpid()}


@app.task(bind=True, acks_late=True, max_retries=2)
def effect_then_retry(self: Task, label: str) -> dict[str, Any]:
    """Commits its Effect in an idempotent block, then asks to be retried once."""
    with idempotent_block("effect") as step:
        if not step.completed:
            Effect.objects.create(label=label, note=f"try {self.request.retries}")
            step.result = self.request.retries
    if self.request.retries == 0:
        raise self.retry(countdown=0)
    return {"effect_written_on_try": step.result, "finished_on_try": self.request.retries}


@app.task
@idempotent_task
def effect_once(label: str) -> str:
    Effect.objects.create(label=label)
    return label
