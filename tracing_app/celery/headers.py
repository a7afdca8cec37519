"""The task header protocol: which string headers a task message carries, and how they are read back.

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
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from typing import Any

from tracing_app import ids
from tracing_app.context import TraceContext, from_carrier

__all__ = [
    "CAUSATION_HEADER",
    "CORRELATION_HEADER",
    "HEADER_NAMES",
    "MAX_HEADER_BYTES",
    "ORIGIN_HEADER",
    "SAMPLED_HEADER",
    "SEQUENCE_HEADER",
    "carried_sequence",
    "carries_valid_id",
    "read_headers",
    "write_headers",
    "write_minted_headers",
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
_MINTED_ORIGINS = ("beat", "publish")

logger = logging.getLogger("tracing_app.celery")


def write_headers(headers: MutableMapping[str, Any], ctx: TraceContext) -> None:
    """Write ``ctx`` into message ``headers`` for one outgoing message, ticking its clock."""
    headers[CORRELATION_HEADER] = ctx.correlation_id
    headers[CAUSATION_HEADER] = ctx.hop_id
    headers[SEQUENCE_HEADER] = str(ctx.tick())
    headers[SAMPLED_HEADER] = "1" if ctx.sampled else "0"
    # A stale copy re-sent from a retried request no longer describes this publish.
    headers.pop(ORIGIN_HEADER, None)


def write_minted_headers(headers: MutableMapping[str, Any], ctx: TraceContext) -> None:
    """Write the headers of a message that starts the transaction ``ctx`` (no publisher hop caused it)."""
    headers[CORRELATION_HEADER] = ctx.correlation_id
    headers.pop(CAUSATION_HEADER, None)
    headers[SEQUENCE_HEADER] = str(ctx.tick())
    headers[SAMPLED_HEADER] = "1" if ctx.sampled else "0"
    headers[ORIGIN_HEADER] = ctx.origin


def carries_valid_id(headers: Mapping[str, Any]) -> bool:
    """Whether ``headers`` already carry a usable correlation ID (a message sent again)."""
    existing = headers.get(CORRELATION_HEADER)
    return isinstance(existing, str) and ids.is_valid_id(existing)


def carried_sequence(headers: Mapping[str, Any]) -> int | None:
    """The clock value a message carries, or None when it carries none we wrote."""
    value = headers.get(SEQUENCE_HEADER)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= _MAX_SEQUENCE_DIGITS:
        return int(value)
    return None


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
    if not isinstance(origin, str) or origin not in _MINTED_ORIGINS:
        origin = "task"
    sampled: bool | None = None
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
    else:
        sampled_value = headers.get(SAMPLED_HEADER)
        if sampled_value in ("1", "0"):
            sampled = sampled_value == "1"
    causation_id = headers.get(CAUSATION_HEADER)
    if not isinstance(causation_id, str) or not ids.is_valid_id(causation_id):
        causation_id = parent_id
    return from_carrier(
        correlation_id,
        hop_id=hop_id,
        causation_id=causation_id,
        sampled=sampled,
        origin=origin,
        sequence=carried_sequence(headers) or 0,
    )
