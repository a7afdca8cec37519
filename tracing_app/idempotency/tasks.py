"""Idempotent Celery tasks: a retry or a redelivery never repeats a completed side effect.

Celery delivers at least once: ``self.retry()`` re-sends the task, and with ``acks_late`` a message whose
worker died is delivered again. Deduplicating enqueues does not help (a redelivered message never passes
through ``apply_async``); what works is a completion record written in the same transaction as the
effect. So:

- the key is claimed in its own short transaction (a concurrent duplicate sees "in progress");
- the body then runs inside ``transaction.atomic()`` on ``IDEMPOTENCY_DATABASE`` and the record is
  completed in that same transaction: the effect's writes and the record commit together or not at all;
- a later attempt finding the record completed skips the body and returns the stored result;
- one finding it in progress waits (up to ``wait`` seconds) for it to complete, or for its lease to
  expire (its worker died) and then takes it over; a stale owner's completion rolls back.

Two forms::

    @app.task(bind=True, acks_late=True)
    @idempotent_task                      # key: task name, correlation ID, arguments
    def charge(self, order_id): ...

    with idempotent_block("charge", key=f"order:{order_id}") as step:   # one step of a longer task
        if not step.completed:
            ...                                                         # side effect
            step.result = {...}                                         # optional, replayed later
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from celery import Task
from celery._state import get_current_task
from django.db import transaction
from kombu.utils.json import dumps, loads

from tracing_app.conf import app_settings
from tracing_app.context import get_correlation_id
from tracing_app.idempotency import store
from tracing_app.idempotency.keys import NAMESPACE, call_fingerprint
from tracing_app.ids import derive_id

P = ParamSpec("P")
R = TypeVar("R")

TASK_SCOPE = "task"


class KeyReused(Exception):
    """An explicit key was used again with different arguments."""


class StillInFlight(Exception):
    """Another attempt still held the key (with a live lease) after waiting ``wait`` seconds."""


@dataclasses.dataclass
class Step:
    """What ``idempotent_block`` yields. When ``completed`` is True the effect already happened: skip it
    (``result`` holds what the first attempt stored). Otherwise do it, optionally setting ``result``."""

    key: str
    completed: bool
    result: Any = None
    claim: store.Claim | None = None


def idempotent_task(
    fn: Callable[P, R] | None = None,
    *,
    key: Callable[..., str] | None = None,
    lease: float | None = None,
    ttl: float | None = None,
    wait: float | None = None,
) -> Any:
    """Run a task body at most once per key; put it under ``@app.task``.

    ``key`` (a function of the task's arguments) gives an explicit business key; by default the key is
    derived from the task name, the correlation ID (the task ID when there is none) and the arguments,
    which must then be JSON-friendly. A duplicate returns the first run's result when it was
    JSON-serialisable (kombu's JSON) and within ``IDEMPOTENCY_MAX_RESPONSE_BYTES``, else None.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            call_args = args[1:] if args and isinstance(args[0], Task) else args
            task = _running_task()
            if task is not None and getattr(task.run, "__func__", task.run) is run:
                operation = task.name
            else:
                operation = f"{fn.__module__}.{fn.__qualname__}"
            client_key = key(*call_args, **kwargs) if key else _default_key(operation, call_args, kwargs)
            fingerprint = call_fingerprint(list(call_args), kwargs)
            with _once(operation, str(client_key), fingerprint, lease=lease, ttl=ttl, wait=wait) as step:
                if step.completed:
                    return step.result
                step.result = fn(*args, **kwargs)
                return step.result

        return run

    return decorate(fn) if fn is not None else decorate


@contextmanager
def idempotent_block(
    operation: str,
    key: str | None = None,
    *,
    lease: float | None = None,
    ttl: float | None = None,
    wait: float | None = None,
) -> Iterator[Step]:
    """One side effect, done at most once per (operation, key): a recovery point inside a task.

    Without ``key`` it must run inside a Celery task; the key is then derived from that task's name,
    correlation ID and arguments, so a retry or redelivery of the task finds the step already done.
    """
    if key is None:
        task = _running_task()
        if task is None:
            raise TypeError(f"idempotent_block({operation!r}) outside a Celery task needs an explicit key")
        key = _default_key(task.name, task.request.args or (), task.request.kwargs or {})
    with _once(operation, key, call_fingerprint(None, None), lease=lease, ttl=ttl, wait=wait) as step:
        yield step


@contextmanager
def _once(
    operation: str,
    client_key: str,
    fingerprint: str,
    *,
    lease: float | None,
    ttl: float | None,
    wait: float | None,
) -> Iterator[Step]:
    using = app_settings.IDEMPOTENCY_DATABASE
    lease = lease or app_settings.IDEMPOTENCY_TASK_LEASE
    result = _claim_waiting(
        wait if wait is not None else lease,
        scope=TASK_SCOPE,
        operation=operation,
        client_key=client_key,
        fingerprint=fingerprint,
        lease=lease,
        ttl=ttl or app_settings.IDEMPOTENCY_TTL,
        using=using,
        correlation_id=get_correlation_id() or "",
    )
    record = result.record
    if result.outcome is store.Outcome.MISMATCH:
        raise KeyReused(f"key {client_key!r} of {operation} was already used with other arguments")
    if result.outcome is store.Outcome.COMPLETED:
        assert record is not None  # a completed claim always carries its record
        store.record_replay(record)
        body = record.response_body
        yield Step(key=record.pk, completed=True, result=loads(bytes(body)) if body is not None else None)
        return
    claim = result.claim
    assert claim is not None  # neither completed nor a mismatch: this attempt acquired the key
    step = Step(key=claim.key, completed=False, claim=claim)
    try:
        with transaction.atomic(using=using), store.activated(claim):
            yield step
            body = _encode(step.result)
            claim.complete(body=body, size=None if body is None else len(body))
    except BaseException:
        claim.release()
        raise


def _claim_waiting(wait: float, **claim_kwargs: Any) -> store.ClaimResult:
    """Claim, waiting while another attempt holds a live lease: it either completes (its result is
    returned) or its lease runs out (it died) and the key is taken over."""
    deadline = time.monotonic() + wait
    pause = 0.05
    while True:
        result = store.claim(**claim_kwargs)
        if result.outcome is not store.Outcome.IN_FLIGHT:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise StillInFlight(
                f"{claim_kwargs['operation']} with key {claim_kwargs['client_key']!r} is still running "
                f"elsewhere (retry after {result.retry_after} s)"
            )
        time.sleep(min(pause, remaining, result.retry_after))
        pause = min(pause * 2, 1.0)


def _default_key(task_name: str, args: Any, kwargs: Any) -> str:
    task = _running_task()
    origin = get_correlation_id() or (task.request.id if task is not None else None)
    if origin is None:
        raise TypeError(f"{task_name}: no correlation ID or task ID to derive a key from; pass key=")
    try:
        return derive_id(f"{NAMESPACE}.task", task_name, origin, list(args), kwargs)
    except TypeError as exc:
        raise TypeError(f"{task_name}: {exc}; or pass key= to name the operation explicitly") from exc


def _encode(result: Any) -> bytes | None:
    try:
        body = dumps(result).encode()
    except TypeError:
        return None
    return body if len(body) <= app_settings.IDEMPOTENCY_MAX_RESPONSE_BYTES else None


def _running_task() -> Task[Any, Any] | None:
    return get_current_task()
