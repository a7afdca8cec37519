"""The idempotency guard's statements alone: what one-commit idempotency costs before any Python runs.

Each kind sends, through the worker's own psycopg connection with no Django cursor, transaction
management or guard logic around it, the view's ``INSERT`` of the idempotency benchmark and what a fresh
key wraps it in. Paired with the bare ``INSERT`` in autocommit, the differences are the floor a guard of
that shape cannot go under on this machine and database.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

#: Kind -> label, in the order the section prints them; "bare" is the baseline of the others.
KINDS = {
    "bare": "the view's INSERT alone, in autocommit",
    "transaction": "the view's INSERT between BEGIN and COMMIT",
    "claim": "+ the claim (no lock timeout) and the completion sent with COMMIT",
    "bounded": "+ the claim's lock timeout",
    "guard": "+ the replay lookup before BEGIN (the guard's statements as sent)",
}

_ORDER = "INSERT INTO bench_idempotency_order (sku, quantity) VALUES (%s, %s)"
_CLAIMED = (
    "key",
    "scope",
    "operation",
    "client_key",
    "fingerprint",
    "method",
    "path",
    "owner",
    "lease_expires_at",
    "correlation_id",
    "created_at",
    "expires_at",
)


class Statements:
    """The sequences, on the default database's connection (PostgreSQL)."""

    def __init__(self, scope: str) -> None:
        from django.db import connection

        from tracing_app.idempotency import store

        connection.ensure_connection()
        self.connection = connection.connection
        self.scope = scope
        self.saved = store._SAVED_LOCK_TIMEOUT
        self.claim = store._claim_sql("default", _CLAIMED, bounded=False)
        self.bounded = store._claim_sql("default", _CLAIMED, bounded=True)
        self.completion = store._complete_and_commit_sql("default")
        self.lookup = store._replay_sql("default", asynchronous=True, brief=True)
        self.kinds: dict[str, Callable[[Any], None]] = {
            "bare": self._bare,
            "transaction": self._transaction,
            "claim": self._claim,
            "bounded": self._bounded,
            "guard": self._guard,
        }

    def run(self, kind: str, requests: int) -> int:
        """Nanoseconds for ``requests`` rounds of ``kind``."""
        step = self.kinds[kind]
        raw = self.connection
        raw.autocommit = True
        with raw.cursor() as cursor:
            started = time.perf_counter_ns()
            for _ in range(requests):
                step(cursor)
            return time.perf_counter_ns() - started

    def clear(self) -> int:
        with self.connection.cursor() as cursor:
            cursor.execute("DELETE FROM tracing_app_idempotencyrecord WHERE scope = %s", [self.scope])
            return cursor.rowcount

    def _values(self) -> list[Any]:
        from django.utils import timezone

        from tracing_app.ids import new_id

        now = timezone.now()
        key = new_id()
        return [
            key,
            self.scope,
            "statements",
            key,
            "fingerprint",
            "POST",
            "/statements/",
            new_id(),
            now + timedelta(seconds=60),
            new_id(),
            now,
            now + timedelta(days=1),
        ]

    def _bare(self, cursor: Any) -> None:
        cursor.execute(_ORDER, ["statements", 1])

    def _transaction(self, cursor: Any) -> None:
        raw = self.connection
        raw.autocommit = False
        cursor.execute(_ORDER, ["statements", 1])
        raw.commit()
        raw.autocommit = True

    def _claim(self, cursor: Any) -> None:
        self._claimed(cursor, self._values(), bounded=False)

    def _bounded(self, cursor: Any) -> None:
        self._claimed(cursor, self._values(), bounded=True)

    def _guard(self, cursor: Any) -> None:
        values = self._values()
        cursor.execute(self.lookup, [values[0], "completed", "fingerprint", values[10]])
        cursor.fetchone()
        self._claimed(cursor, values, bounded=True)

    def _claimed(self, cursor: Any, values: list[Any], *, bounded: bool) -> None:
        """The claim, the view's INSERT, and the completion sent with COMMIT, in one transaction."""
        raw = self.connection
        raw.autocommit = False
        if bounded:
            cursor.execute(self.bounded, [self.saved, "5000ms", *values, self.saved])
        else:
            cursor.execute(self.claim, values)
        cursor.execute(_ORDER, ["statements", 1])
        cursor.execute(self.completion, [201, "[]", b'{"id": 1}', 9, values[10], values[0], values[7]])
        raw.autocommit = True
