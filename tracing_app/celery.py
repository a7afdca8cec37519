"""Celery: carry the transaction through task headers and into every line a worker logs.

Enable it once, where the Celery app is created::

    from celery import Celery
    from tracing_app.celery import install

    app = Celery("proj")
    app.config_from_object("django.conf:settings", namespace="CELERY")
    install(app)

Publishing (``before_task_publish``) writes these string-only message headers:

================================  ==========================================================================
``tracing_correlation_id``        the transaction's correlation ID
``tracing_causation_id``          the publisher's hop ID (the request's ID, or the publishing task's ID);
                                  omitted when the publisher had no transaction
``tracing_sequence``              the transaction's Lamport clock, ticked by the publisher (decimal)
``tracing_sampled``               ``"1"`` or ``"0"``: the sampling decision made once at the edge
``tracing_origin``                only when publishing minted the ID: ``"beat"`` or ``"publish"``
================================  ==========================================================================

Together they add at most :data:`MAX_HEADER_BYTES` (200) bytes to a message while IDs are ULIDs or
UUIDs (up to 36 characters); a longer trusted incoming ID adds its extra length. The task tree itself is
Celery's own ``task_id`` / ``parent_id`` / ``root_id``: nothing here duplicates it.

In the worker, ``task_prerun`` makes the task's context current (hop ID = ``task_id``) and
``task_postrun`` resets it with its token, so two tasks on one process never see each other's ID, in
every pool; the reset runs after every other ``task_postrun`` receiver, so those still see the task's
context. The consumer step and :class:`TracedRequest` do the same in the worker's main process around
the "received" line and the worker-lost, time-limit and revoke paths. Eager tasks (``task_always_eager``,
``.apply()``) run as a child hop of the caller's transaction and hand the caller back its own context.

Celery's logging setup signals hand the worker's handlers to :mod:`tracing_app.worker_logs`: the
correlation and task filters on every handler, and one format per stream (JSON or text), so Celery's own
lines carry the ID too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

from celery import Celery, bootsteps, signals
from celery.app.amqp import AMQP
from celery.exceptions import WorkerLostError
from celery.worker.request import Request
from django.core.checks import CheckMessage, Tags, register
from django.core.checks import Warning as CheckWarning
from django.dispatch import Signal

from tracing_app import ids, worker_logs
from tracing_app.context import TraceContext, _current
from tracing_app.outbox.worker import OutboxRelayStep
from tracing_app.sampling import is_sampled
from tracing_app.worker_logs import TaskFilter, instrument_handlers  # noqa: F401  (public names, kept here)

__all__ = [
    "CAUSATION_HEADER",
    "CORRELATION_HEADER",
    "HEADER_NAMES",
    "MAX_HEADER_BYTES",
    "ORIGIN_HEADER",
    "SAMPLED_HEADER",
    "SEQUENCE_HEADER",
    "TracedAMQP",
    "TracedRequest",
    "install",
    "is_installed",
    "publish_failed",
    "read_headers",
    "task_requeued",
    "write_headers",
]

CORRELATION_HEADER = "tracing_correlation_id"
CAUSATION_HEADER = "tracing_causation_id"
SEQUENCE_HEADER = "tracing_sequence"
SAMPLED_HEADER = "tracing_sampled"
ORIGIN_HEADER = "tracing_origin"
HEADER_NAMES = (CORRELATION_HEADER, CAUSATION_HEADER, SEQUENCE_HEADER, SAMPLED_HEADER, ORIGIN_HEADER)
#: Bytes our headers add to a message (names plus values) while IDs are at most 36 characters.
MAX_HEADER_BYTES = 200

# A clock value longer than this is not one we wrote; parsing it would let a message allocate freely.
_MAX_SEQUENCE_DIGITS = 18
# Derived IDs for task messages without a usable header: the worker's main process and the pool child
# reach the same "fresh" ID for one message without talking to each other.
_DERIVE_NAMESPACE = "tracing_app.celery.task"

logger = logging.getLogger("tracing_app.celery")

_state = {"installed": False, "origin_without_context": "publish"}

#: Sent when the broker did not accept a task message (``sender`` the task name; ``exception``; ``headers``
#: as written; ``deferred`` True when the message is kept and sent again later, as the outbox does).
#: Sent in the publisher's context, then the exception propagates as before.
publish_failed = Signal()
#: Sent in the worker's main process, in the task's context, when a task's message goes back to the queue
#: because its worker process was lost (``acks_late`` with ``reject_on_worker_lost``): Celery sends no
#: ``task_failure`` then. ``sender`` the task; ``task_id``; ``exception``.
task_requeued = Signal()

# Set while a publisher that keeps its messages (the outbox) sends: a failure is then deferred, not lost.
_publish_deferred: ContextVar[bool] = ContextVar("tracing_app.celery.publish_deferred", default=False)


def write_headers(headers: MutableMapping[str, Any], ctx: TraceContext) -> None:
    """Write ``ctx`` into message ``headers`` for one outgoing message, ticking its clock."""
    headers[CORRELATION_HEADER] = ctx.correlation_id
    headers[CAUSATION_HEADER] = ctx.hop_id
    headers[SEQUENCE_HEADER] = str(ctx.tick())
    headers[SAMPLED_HEADER] = "1" if ctx.sampled else "0"
    # A stale copy re-sent from a retried request no longer describes this publish.
    headers.pop(ORIGIN_HEADER, None)


def _mint_headers(headers: MutableMapping[str, Any]) -> None:
    correlation_id = ids.new_id()
    headers[CORRELATION_HEADER] = correlation_id
    headers.pop(CAUSATION_HEADER, None)
    headers[SEQUENCE_HEADER] = "1"
    headers[SAMPLED_HEADER] = "1" if is_sampled(correlation_id) else "0"
    headers[ORIGIN_HEADER] = _state["origin_without_context"]


def read_headers(
    headers: Mapping[str, Any],
    *,
    hop_id: str,
    parent_id: str | None = None,
    report: bool = False,
) -> TraceContext:
    """The context a task (``hop_id`` = its task ID) runs in, restored from its message headers.

    Missing or invalid headers never stop the task: the correlation ID is then derived from ``hop_id``
    (the same in every process that sees the message) and, with ``report``, the rejected value is
    logged escaped. The causation ID falls back to Celery's ``parent_id``.
    """
    correlation_id = headers.get(CORRELATION_HEADER)
    origin = headers.get(ORIGIN_HEADER)
    if not isinstance(origin, str) or origin not in ("beat", "publish"):
        origin = "task"
    if not isinstance(correlation_id, str) or not ids.is_valid_id(correlation_id):
        if report:
            if correlation_id is None:
                logger.info("Task %s arrived without a correlation ID; using a fresh one", hop_id)
            else:
                logger.warning(
                    "Task %s carried an invalid correlation ID %s; using a fresh one",
                    hop_id,
                    ids.safe_repr(correlation_id),
                )
        correlation_id = ids.derive_id(_DERIVE_NAMESPACE, hop_id)
        origin = "task"
        sampled = is_sampled(correlation_id)
    else:
        sampled_value = headers.get(SAMPLED_HEADER)
        sampled = sampled_value == "1" if sampled_value in ("1", "0") else is_sampled(correlation_id)
    causation_id = headers.get(CAUSATION_HEADER)
    if not isinstance(causation_id, str) or not ids.is_valid_id(causation_id):
        causation_id = parent_id
    sequence_value = headers.get(SEQUENCE_HEADER)
    sequence = (
        int(sequence_value)
        if isinstance(sequence_value, str)
        and sequence_value.isascii()
        and sequence_value.isdigit()
        and len(sequence_value) <= _MAX_SEQUENCE_DIGITS
        else 0
    )
    return TraceContext(
        correlation_id,
        hop_id=hop_id,
        causation_id=causation_id,
        sampled=sampled,
        origin=origin,
        sequence=sequence,
    )


# -- publish side ---------------------------------------------------------------------------------------


def _on_before_task_publish(headers: MutableMapping[str, Any] | None = None, **kwargs: Any) -> None:
    if headers is None:
        return
    ctx = _current.get()
    if ctx is not None:
        write_headers(headers, ctx)
        return
    # No transaction here (beat, a shell, the worker's main process re-sending a lost task): keep a
    # valid ID the message already carries, otherwise this message starts a transaction of its own.
    existing = headers.get(CORRELATION_HEADER)
    if not (isinstance(existing, str) and ids.is_valid_id(existing)):
        _mint_headers(headers)


def _on_beat_init(**kwargs: Any) -> None:
    _state["origin_without_context"] = "beat"


@contextmanager
def deferred_publishing() -> Iterator[None]:
    """Mark publishes in the block as kept for a later retry, so their failures are not final errors."""
    token = _publish_deferred.set(True)
    try:
        yield
    finally:
        _publish_deferred.reset(token)


def publishing_deferred() -> bool:
    """Whether the current publish is kept to be sent again if it fails (see :func:`deferred_publishing`)."""
    return _publish_deferred.get()


class TracedAMQP(AMQP):
    """Celery's AMQP helper, reporting a message the broker did not accept as :data:`publish_failed`.

    Celery has a signal before a publish and one after the broker accepted it, none for a failure;
    every task message goes through ``send_task_message``.
    """

    def _create_task_sender(self) -> Callable[..., Any]:
        send = super()._create_task_sender()

        def send_task_message(producer: Any, name: str, message: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return send(producer, name, message, *args, **kwargs)
            except Exception as exc:
                publish_failed.send(
                    sender=name, exception=exc, headers=message[0], deferred=_publish_deferred.get()
                )
                raise

        return send_task_message


# -- worker side: the task body -------------------------------------------------------------------------

_BINDING_ATTR = "_tracing_binding"


def _on_task_prerun(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    if task is None or task_id is None:
        return
    request = task.request
    caller = _current.get()
    if request.is_eager:
        if caller is None:
            ctx = TraceContext(ids.new_id(), hop_id=task_id, origin="task")
            ctx.sampled = is_sampled(ctx.correlation_id)
        else:
            ctx = TraceContext(
                caller.correlation_id,
                hop_id=task_id,
                causation_id=caller.hop_id,
                sampled=caller.sampled,
                origin=caller.origin,
                sequence=caller.tick(),
            )
    else:
        if caller is not None and caller.hop_id != task_id:
            # Only the solo pool runs a task inside a context: its own message's. Anything else was left
            # behind by code outside a task (a thread, a receiver): say so instead of hiding it.
            logger.warning(
                "Task %s started while transaction %s was current; it runs in its own",
                task_id,
                caller.correlation_id,
            )
        ctx = read_headers(vars(request), hop_id=task_id, parent_id=request.parent_id, report=True)
    # The token lives on this run's request object: eager tasks nest and thread pools interleave, and
    # each postrun must reset exactly the binding its own prerun made.
    setattr(request, _BINDING_ATTR, _current.set(ctx))


def _on_task_postrun(task: Any = None, **kwargs: Any) -> None:
    if task is None:
        return
    request = task.request
    token: Token[TraceContext | None] | None = vars(request).pop(_BINDING_ATTR, None)
    if token is None:
        return
    finished = _current.get()
    _current.reset(token)
    caller = token.old_value
    if request.is_eager and isinstance(caller, TraceContext) and finished is not None:
        # Like a reply: whatever the caller does next happens after everything the eager task did.
        caller.observe(finished.sequence)


# -- worker side: the main process ----------------------------------------------------------------------


@contextmanager
def _main_process_hop(headers: Mapping[str, Any], task_id: str, task_name: str) -> Iterator[None]:
    """Run a main-process callback in the task's transaction, with its task ID for the log lines."""
    token = _current.set(read_headers(headers, hop_id=task_id, parent_id=headers.get("parent_id")))
    task_token = worker_logs.main_process_task.set((task_id, task_name))
    try:
        yield
    finally:
        worker_logs.main_process_task.reset(task_token)
        _current.reset(token)


class TracedRequest(Request):
    """The worker's request class: runs main-process callbacks in the task's transaction.

    Worker-lost, time-limit, revoke and failure lines are logged (and their signals sent) by the
    worker's main process, outside any task body; this makes them carry the task's correlation ID and
    task ID. :func:`install` gives it to every task the worker runs whose request class is Celery's
    default, whatever the task's base class; a task class with its own ``Request`` can subclass this.
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
        if _current.get() is not None:
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


def _reset_after_other_receivers(**kwargs: Any) -> None:
    # Celery calls receivers in connection order. Receivers connected after install() (trace events,
    # OpenTelemetry, the project's own) must still see the task's context in task_postrun, so the reset
    # moves to the end once the worker, or a pool process, has everything connected.
    uid = _dispatch_uid(_on_task_postrun)
    signals.task_postrun.disconnect(_on_task_postrun, dispatch_uid=uid)
    signals.task_postrun.connect(_on_task_postrun, weak=False, dispatch_uid=uid)


class TracingStrategies(bootsteps.StartStopStep):
    """Consumer step: each message is handled inside its task's transaction in the main process.

    Celery logs "Task ... received" (and discards revoked tasks) before any task signal fires; the solo
    pool even runs the task inside this call. Runs after the Tasks step builds the strategies, on every
    (re)connection.
    """

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def start(self, parent: Any) -> None:
        _reset_after_other_receivers()
        strategies = parent.strategies
        for name, strategy in list(strategies.items()):
            if hasattr(strategy, "tracing_wraps"):
                continue
            task = parent.app.tasks.get(name)
            if task is not None and _uses_default_request(task):
                # A task class not derived from app.Task kept Celery's request class; the strategy
                # built the request type from it, so it is built again.
                type(task).Request = TracedRequest
                strategy = task.start_strategy(parent.app, parent)
            strategies[name] = _traced_strategy(strategy, name)


def _uses_default_request(task: Any) -> bool:
    return task.Request in (Request, "celery.worker.request:Request")


# -- worker logs (tracing_app.worker_logs) ---------------------------------------------------------------


def _on_after_setup_logger(**kwargs: Any) -> None:
    worker_logs.after_setup_logger(**kwargs)


def _on_after_setup_task_logger(**kwargs: Any) -> None:
    worker_logs.after_setup_task_logger(**kwargs)


# -- wiring ---------------------------------------------------------------------------------------------

_RECEIVERS: tuple[tuple[Any, Callable[..., None]], ...] = (
    (signals.before_task_publish, _on_before_task_publish),
    (signals.task_prerun, _on_task_prerun),
    (signals.task_postrun, _on_task_postrun),
    (signals.after_setup_logger, _on_after_setup_logger),
    (signals.after_setup_task_logger, _on_after_setup_task_logger),
    (signals.beat_init, _on_beat_init),
    (signals.beat_embedded_init, _on_beat_init),
    (signals.worker_process_init, _reset_after_other_receivers),
)


def _dispatch_uid(receiver: Callable[..., None]) -> str:
    return f"tracing_app.celery.{receiver.__name__}"


def install(app: Celery) -> None:
    """Carry the correlation ID through ``app``'s tasks and worker logs. Safe to call more than once.

    Call it where the Celery app is created (``proj/celery.py``), after ``config_from_object``.
    """
    for signal, receiver in _RECEIVERS:
        signal.connect(receiver, weak=False, dispatch_uid=_dispatch_uid(receiver))
    consumer_steps = app.steps["consumer"]
    if TracingStrategies not in consumer_steps:
        consumer_steps.add(TracingStrategies)
    app.steps["worker"].add(OutboxRelayStep)
    task_base = app.Task
    if _uses_default_request(task_base):
        task_base.Request = TracedRequest
    if app.amqp_cls in (AMQP, "celery.app.amqp:AMQP"):
        app.amqp_cls = TracedAMQP
        # Built already when something was sent before install(): built again, with the new class.
        vars(app).pop("amqp", None)
    _state["installed"] = True


def is_installed() -> bool:
    """Whether :func:`install` has run in this process."""
    return bool(_state["installed"])


@register(Tags.compatibility)
def check_celery_installed(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Warn when Celery is importable but tasks would travel without the correlation ID."""
    if is_installed():
        return []
    return [
        CheckWarning(
            "Celery is installed but tracing_app is not wired into a Celery app: tasks and worker logs "
            "will not carry the correlation ID.",
            hint="Call tracing_app.celery.install(app) where the Celery app is created, and import that "
            "module from your project's __init__.py. Silence this check if the project does not use Celery.",
            id="tracing_app.W301",
        )
    ]
