"""Guarded views and ``ATOMIC_REQUESTS``: the guard opens the view's transaction itself.

A guarded view is kept out of ``ATOMIC_REQUESTS`` on ``IDEMPOTENCY_DATABASE`` (a lease claim must not run
inside the request's transaction); a request the guard lets through still gets the transaction
``ATOMIC_REQUESTS`` would have opened.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from django.db import connections, transaction

from tracing_app.conf import app_settings


class NonAtomicAliases:
    """Django asks ``alias in view._non_atomic_requests``; the records' database is always in it.

    Answered from the settings of the moment, so ``override_settings`` of ``IDEMPOTENCY_DATABASE``
    applies to views decorated at import time.
    """

    def __init__(self, others: Iterable[str]) -> None:
        self.others = set(others)

    def __contains__(self, alias: object) -> bool:
        return alias == app_settings.IDEMPOTENCY_DATABASE or alias in self.others

    def add(self, alias: str) -> None:
        self.others.add(alias)


def as_atomic_requests_would() -> AbstractContextManager[Any]:
    """The transaction ``ATOMIC_REQUESTS`` would have opened for a request the guard lets through."""
    using = app_settings.IDEMPOTENCY_DATABASE
    if connections.settings[using].get("ATOMIC_REQUESTS"):
        return transaction.atomic(using=using)
    return nullcontext()
