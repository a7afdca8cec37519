"""tracing_app: one correlation ID through Django requests, Celery tasks, logs, API and error pages.

Public API:

- :func:`get_correlation_id` / :func:`get_causation_id`: the current IDs, or None outside a transaction.
- :func:`bind`: a context manager running a block inside a transaction (minting an ID if none given).
- :func:`wrap`, :class:`ContextThread`, :class:`ContextThreadPoolExecutor`: carry the context into
  threads and executors.
- :func:`new_id`, :func:`is_valid_id`, :func:`derive_id`: mint, validate and derive IDs.
"""

from tracing_app.context import (
    ContextThread,
    ContextThreadPoolExecutor,
    bind,
    get_causation_id,
    get_correlation_id,
    wrap,
)
from tracing_app.ids import derive_id, is_valid_id, new_id

__all__ = [
    "ContextThread",
    "ContextThreadPoolExecutor",
    "bind",
    "derive_id",
    "get_causation_id",
    "get_correlation_id",
    "is_valid_id",
    "new_id",
    "wrap",
]
