"""A transactional outbox for Celery tasks: a task queued in a transaction is sent if, and once, it commits.

::

    from django.db import transaction
    from tracing_app.outbox import send_on_commit

    with transaction.atomic():
        order.save()
        send_on_commit(chain(reserve.si(order.pk), charge.si(order.pk)))

The message is written to the outbox table inside the transaction, published by this process right after
the commit, and by a relay when that fails (the broker is down, the process died): by default a thread in
every ``celery worker`` (``OUTBOX_RELAY_IN_WORKER``), or ``manage.py relay_outbox`` processes. The task runs
under the publishing request's correlation ID, causation and clock, whenever it is sent.

The model is importable without Celery; :func:`send_on_commit` needs it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["send_on_commit"]


def __getattr__(name: str) -> Any:
    # Django loads the model from this package whether or not the project uses Celery.
    if name == "send_on_commit":
        from tracing_app.outbox.enqueue import send_on_commit

        return send_on_commit
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
