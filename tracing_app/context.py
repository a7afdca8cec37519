"""The current transaction: one ContextVar holding a :class:`TraceContext`.

One ContextVar (not one per field) keeps the hot path to a single ``set``/``reset`` pair per request or
task. Every ``set`` is paired with ``reset(token)``, never ``set(None)``, so nested bindings restore what
they found and values never leak between requests or tasks.

This module is the only writer of the variable. Edges build a hop's context with :func:`from_carrier`
(what a request's headers, a task's headers or a message's metadata carried) and make it current with
:func:`activate` / :func:`deactivate`; blocks of code use :func:`bind`. Everything else reads it with
:func:`current`.
"""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from tracing_app import ids
from tracing_app.sampling import is_sampled

__all__ = [
    "ContextThread",
    "ContextThreadPoolExecutor",
    "TraceContext",
    "activate",
    "bind",
    "current",
    "deactivate",
    "from_carrier",
    "get_causation_id",
    "get_correlation_id",
    "wrap",
]

P = ParamSpec("P")
R = TypeVar("R")


class TraceContext:
    """What one hop (a request, a task, a consumed message) knows about its transaction.

    - ``correlation_id``: the transaction's ID; never changes as work fans out.
    - ``hop_id``: this hop's own ID (a request's ID, a Celery task's ``task_id``).
    - ``causation_id``: the ``hop_id`` of the hop that caused this one, or None at the root.
    - ``sampled``: whether the transaction's events are recorded (decided once, at the edge).
    - ``origin``: where the ID came from: "http", "http-incoming", "task", "beat", "publish" (minted when
      a task was published outside any transaction), "message", "bound".
    - ``sequence``: a Lamport clock for the transaction; hops order causally by it, not by wall clock.
    """

    __slots__ = ("causation_id", "correlation_id", "hop_id", "origin", "sampled", "sequence")

    def __init__(
        self,
        correlation_id: str,
        hop_id: str | None = None,
        causation_id: str | None = None,
        sampled: bool = True,
        origin: str = "bound",
        sequence: int = 0,
    ) -> None:
        self.correlation_id = correlation_id
        self.hop_id = hop_id or correlation_id
        self.causation_id = causation_id
        self.sampled = sampled
        self.origin = origin
        self.sequence = sequence

    def tick(self) -> int:
        """Advance the clock for an event or an outgoing message, and return the new value."""
        self.sequence += 1
        return self.sequence

    def observe(self, sequence: int) -> None:
        """Merge a clock value received from another hop (Lamport: take the larger)."""
        if sequence > self.sequence:
            self.sequence = sequence

    def __repr__(self) -> str:
        return (
            f"TraceContext(correlation_id={self.correlation_id!r}, hop_id={self.hop_id!r}, "
            f"causation_id={self.causation_id!r}, sampled={self.sampled}, sequence={self.sequence})"
        )


_current: contextvars.ContextVar[TraceContext | None] = contextvars.ContextVar(
    "tracing_app.current", default=None
)


#: The current transaction's context, or None outside any transaction. The ContextVar's own bound
#: ``get``: the log filter and every event read it, so it costs no extra Python frame.
current: Callable[[], TraceContext | None] = _current.get


def from_carrier(
    correlation_id: str | None,
    origin: str,
    *,
    hop_id: str | None = None,
    causation_id: str | None = None,
    sequence: int = 0,
    sampled: bool | None = None,
) -> TraceContext:
    """The context of a hop that starts from what a carrier (headers, message metadata) carried.

    The edge validates and decodes its own carrier and passes what it accepted; here a missing
    correlation ID is minted and a missing sampling decision is made, the same way for every edge.
    """
    if correlation_id is None:
        correlation_id = ids.new_id()
    # Positional: every request builds one, and keyword arguments cost a request more.
    return TraceContext(
        correlation_id,
        hop_id,
        causation_id,
        is_sampled(correlation_id) if sampled is None else sampled,
        origin,
        sequence,
    )


def get_correlation_id() -> str | None:
    """The current correlation ID, or None outside any transaction. Never mints one."""
    ctx = _current.get()
    return None if ctx is None else ctx.correlation_id


def get_causation_id() -> str | None:
    """The ID of the hop that caused the current one, or None."""
    ctx = _current.get()
    return None if ctx is None else ctx.causation_id


#: Make a context current; pass the returned token to :func:`deactivate` when the hop ends. For edges
#: that start and end a hop in two places (a middleware call, two signals); elsewhere use :func:`bind`.
#: The ContextVar's own bound ``set``, so the HTTP edge and every task pay no extra call for it.
activate: Callable[[TraceContext], contextvars.Token[TraceContext | None]] = _current.set
#: Restore whatever was current before the matching :func:`activate` (the ContextVar's bound ``reset``).
deactivate: Callable[[contextvars.Token[TraceContext | None]], None] = _current.reset


@contextmanager
def bind(
    correlation_id: str | None = None,
    *,
    causation_id: str | None = None,
    sampled: bool | None = None,
    origin: str = "bound",
) -> Iterator[TraceContext]:
    """Run a block (a script, a consumer loop, a cron job) inside a transaction.

    With no ``correlation_id`` a fresh one is minted. Without ``sampled`` the transaction is sampled at
    ``SAMPLE_RATE``, as at every edge. The previous context is restored on exit.
    """
    ctx = from_carrier(correlation_id or None, causation_id=causation_id, sampled=sampled, origin=origin)
    token = activate(ctx)
    try:
        yield ctx
    finally:
        deactivate(token)


def wrap(fn: Callable[P, R]) -> Callable[P, R]:
    """Wrap ``fn`` to run in a copy of the caller's context, wherever it is later called.

    Use it for ``threading.Thread(target=wrap(work))`` and callbacks handed to other libraries: a new
    thread starts with an empty context otherwise, and its log lines lose the correlation ID.
    """
    snapshot = contextvars.copy_context()

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return snapshot.copy().run(fn, *args, **kwargs)

    return run


class ContextThread(threading.Thread):
    """A ``threading.Thread`` whose target runs in the context of the code that created it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tracing_context = contextvars.copy_context()

    def run(self) -> None:
        self._tracing_context.run(super().run)


class ContextThreadPoolExecutor(ThreadPoolExecutor):
    """A ``ThreadPoolExecutor`` whose jobs run in the context of the code that submitted them."""

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        return super().submit(contextvars.copy_context().run, fn, *args, **kwargs)
