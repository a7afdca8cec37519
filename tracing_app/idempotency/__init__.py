"""Exactly-once side effects for retried requests and redelivered tasks.

- ``keys``: the client's ``Idempotency-Key``, the principal scope, the deterministic record key.
- ``models``: :class:`~tracing_app.idempotency.models.IdempotencyRecord`.
- ``store``: claim, complete, release, takeover of expired leases, purge.
- ``http``: ``@idempotent``, ``IdempotentAPIViewMixin`` (DRF) and ``IdempotencyMiddleware``.
- ``tasks``: ``@idempotent_task`` and ``idempotent_block`` for Celery.
"""
