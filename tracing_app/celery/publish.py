"""The publish side: every task message carries the transaction, and a failed publish is reported.

A message published inside a transaction carries it (:func:`tracing_app.celery.headers.write_headers`).
One published outside any (beat, a shell) starts a transaction of its own: :class:`TracedAMQP` makes that
new transaction current for the length of the send, so OpenTelemetry's producer span and every log line
of the send belong to it and its sampling decision is the one the message carries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from celery.app.amqp import AMQP
from django.dispatch import Signal

from tracing_app.celery.headers import carries_valid_id, write_minted_headers
from tracing_app.context import TraceContext, activate, current, deactivate, from_carrier

__all__ = ["TracedAMQP", "deferred_publishing", "publish_failed", "publishing_deferred"]

#: Sent when the broker did not accept a task message (``sender`` the task name; ``exception``; ``headers``
#: as written; ``deferred`` True when the message is kept and sent again later, as the outbox does).
#: Sent in the publisher's context, then the exception propagates as before.
publish_failed = Signal()

# Set while a publisher that keeps its messages (the outbox) sends: a failure is then deferred, not lost.
_publish_deferred: ContextVar[bool] = ContextVar("tracing_app.celery.publish_deferred", default=False)
# The transaction the message being sent starts, while TracedAMQP sends it.
_starting: ContextVar[TraceContext | None] = ContextVar("tracing_app.celery.starting", default=None)
# What a message published outside any transaction gives as its origin: "beat" once beat started here.
_origin_without_context = {"origin": "publish"}


def publish_from_beat() -> None:
    """Messages published outside a transaction from now on are beat's."""
    _origin_without_context["origin"] = "beat"


def minted_origin() -> str:
    """The origin of a transaction that a message published outside any starts: beat's, or a publish."""
    return _origin_without_context["origin"]


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


def starts_transaction(ctx: TraceContext) -> bool:
    """Whether ``ctx`` is the transaction the message being sent starts (it has no publisher hop)."""
    return _starting.get() is ctx


def _minted_context(headers: Mapping[str, Any]) -> TraceContext | None:
    # A valid ID the message already carries (the worker's main process re-sending a lost task) stays.
    if current() is not None or carries_valid_id(headers):
        return None
    return from_carrier(None, origin=minted_origin())


class TracedAMQP(AMQP):
    """Celery's AMQP helper: a message published outside any transaction starts one, current while it is
    sent; a message the broker did not accept is reported as :data:`publish_failed`.

    Celery has a signal before a publish and one after the broker accepted it, none for a failure;
    every task message goes through ``send_task_message``.
    """

    def _create_task_sender(self) -> Callable[..., Any]:
        # Private in Celery (and absent from celery-types), but the one place every task message passes.
        send = super()._create_task_sender()  # type: ignore[misc]

        def send_task_message(producer: Any, name: str, message: Any, *args: Any, **kwargs: Any) -> Any:
            headers = message[0]
            extra = kwargs.get("headers")
            if extra:
                # Merged here, as Celery would merge them next, so a header passed to apply_async is seen.
                headers.update(extra)
                kwargs["headers"] = None
            minted = _minted_context(headers)
            tokens = None
            if minted is not None:
                write_minted_headers(headers, minted)
                tokens = activate(minted), _starting.set(minted)
            try:
                return send(producer, name, message, *args, **kwargs)
            except Exception as exc:
                publish_failed.send(
                    sender=name, exception=exc, headers=headers, deferred=_publish_deferred.get()
                )
                raise
            finally:
                if tokens is not None:
                    _starting.reset(tokens[1])
                    deactivate(tokens[0])

        return send_task_message
