"""The worker's main process: callbacks that run outside any task body, run in the task's transaction.

Celery logs "Task ... received" (and discards revoked tasks) before any task signal fires, and logs
worker-lost, time-limit, revoke and failure lines from the main process; the solo pool even runs the
task inside the consumer's call. :class:`TracingStrategies` and :class:`TracedRequest` make the task's
context current around those, so every such line carries its correlation ID and task ID.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from celery import bootsteps
from celery.exceptions import WorkerLostError
from celery.worker.request import Request
from django.dispatch import Signal

from tracing_app.celery import worker_logs
from tracing_app.celery.headers import read_headers
from tracing_app.context import activate, current, deactivate

__all__ = ["TracedRequest", "TracingStrategies", "task_requeued", "uses_default_request"]

#: Sent in the worker's main process, in the task's context, when a task's message goes back to the queue
#: because its worker process was lost (``acks_late`` with ``reject_on_worker_lost``): Celery sends no
#: ``task_failure`` then. ``sender`` the task; ``task_id``; ``exception``.
task_requeued = Signal()


@contextmanager
def _main_process_hop(headers: Mapping[str, Any], task_id: str, task_name: str) -> Iterator[None]:
    """Run a main-process callback in the task's transaction, with its task ID for the log lines."""
    token = activate(read_headers(headers, hop_id=task_id, parent_id=headers.get("parent_id")))
    task_token = worker_logs.main_process_task.set((task_id, task_name))
    try:
        yield
    finally:
        worker_logs.main_process_task.reset(task_token)
        deactivate(token)


class TracedRequest(Request):
    """The worker's request class: runs main-process callbacks in the task's transaction.

    Worker-lost, time-limit, revoke and failure lines are logged (and their signals sent) by the
    worker's main process, outside any task body; this makes them carry the task's correlation ID and
    task ID. :func:`tracing_app.celery.install` gives it to every task the worker runs whose request
    class is Celery's default, whatever the task's base class; a task class with its own ``Request`` can
    subclass this.
    """

    def _hop(self) -> Any:
        return _main_process_hop(self.request_dict, self.id, self.name)

    def on_timeout(self, soft: bool, timeout: float) -> None:
        with self._hop():
            super().on_timeout(soft, timeout)

    def on_failure(self, exc_info: Any, send_failed_event: bool = True, return_ok: bool = False) -> Any:
        with self._hop():
            exc = getattr(exc_info.exception, "exc", exc_info.exception)
            if isinstance(exc, WorkerLostError) and self.task.acks_late and self.task.reject_on_worker_lost:
                # Before Celery logs it, so the trace stores this failure once, not again as a log line.
                task_requeued.send(sender=self.task, task_id=self.id, exception=exc)
            return super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)

    def revoked(self) -> bool:
        # Checked on receipt (inside the consumer step's context) and again when a reserved or
        # scheduled task reaches the pool, outside any: "Discarding revoked task" is logged there.
        if current() is not None:
            return super().revoked()
        with self._hop():
            return super().revoked()


def _traced_strategy(handle: Callable[..., Any], task_name: str) -> Callable[..., Any]:
    def on_message(message: Any, *args: Any, **kwargs: Any) -> Any:
        headers = message.headers
        task_id = headers.get("id") if headers else None
        if task_id is None:
            return handle(message, *args, **kwargs)
        with _main_process_hop(headers, task_id, task_name):
            return handle(message, *args, **kwargs)

    on_message.tracing_wraps = handle  # type: ignore[attr-defined]
    return on_message


class TracingStrategies(bootsteps.StartStopStep):
    """Consumer step: each message is handled inside its task's transaction in the main process.

    Runs after the Tasks step builds the strategies, on every (re)connection.
    """

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def start(self, parent: Any) -> None:
        strategies = parent.strategies
        for name, strategy in list(strategies.items()):
            if hasattr(strategy, "tracing_wraps"):
                continue
            task = parent.app.tasks.get(name)
            if task is not None and uses_default_request(task):
                # A task class not derived from app.Task kept Celery's request class; the strategy
                # built the request type from it, so it is built again.
                type(task).Request = TracedRequest
                strategy = task.start_strategy(parent.app, parent)
            strategies[name] = _traced_strategy(strategy, name)


def uses_default_request(task: Any) -> bool:
    """Whether ``task`` (or a task class) still uses Celery's own request class."""
    return task.Request in (Request, "celery.worker.request:Request")
