"""Exactly-once side effects for retried requests and redelivered tasks.

Three ways to guard a view's unsafe methods (``IDEMPOTENCY_METHODS``), each running the view inside a
``guard.Guard``:

- ``decorator``: ``@idempotent`` on a Django view, a DRF view or one ViewSet action;
- ``drf``: ``IdempotentAPIViewMixin`` first in a DRF view's bases;
- ``middleware``: ``IdempotencyMiddleware`` plus the ``IDEMPOTENCY_VIEWS`` setting, no change in the view.

Beside them: ``options`` (how a view is guarded), ``responses`` (replays and refusals),
``atomic_requests`` (guarded views and ``ATOMIC_REQUESTS``), ``keys`` (the client's key, the principal
scope, the record key), ``models``, ``store`` (claim, complete, release, takeover, purge) and ``tasks``
(``@idempotent_task`` and ``idempotent_block`` for Celery, loaded on first use since Celery is optional).
"""

from typing import Any

from tracing_app.idempotency.decorator import idempotent
from tracing_app.idempotency.drf import IdempotentAPIViewMixin
from tracing_app.idempotency.options import IdempotencyOptions
from tracing_app.idempotency.store import active_claim

__all__ = [
    "IdempotencyOptions",
    "IdempotentAPIViewMixin",
    "active_claim",
    "idempotent",
    "idempotent_block",
    "idempotent_task",
]

_CELERY_NAMES = frozenset({"idempotent_block", "idempotent_task"})


def __getattr__(name: str) -> Any:
    if name in _CELERY_NAMES:
        from tracing_app.idempotency import tasks

        return getattr(tasks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
