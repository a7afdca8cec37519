"""The correlation ID as W3C baggage that always goes out, whatever baggage came in.

W3C Baggage caps a header at 180 members and 8192 bytes, and the SDK enforces that on inject by cutting
entries from the end. Incoming baggage at the limit, with the correlation ID appended after it, would
therefore leave without the correlation ID. :func:`with_correlation_id` adds it where everything fits;
where it does not, it puts the correlation ID first and drops incoming members from the end (counted in
a DEBUG line).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from urllib.parse import quote_plus

from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.context import Context

from tracing_app.conf import app_settings
from tracing_app.context import TraceContext
from tracing_app.otel.names import BAGGAGE_KEY

logger = logging.getLogger("tracing_app.otel")

#: W3C Baggage: a platform must propagate up to 180 members and 8192 bytes, and may drop anything beyond.
MAX_MEMBERS = 180
MAX_BYTES = 8192
# The SDK skips a member longer than this on inject.
_MAX_MEMBER_BYTES = 4096


def with_correlation_id(ctx: TraceContext, context: Context | None = None) -> Context:
    """``context`` (default: the current one) with ``ctx``'s correlation ID in its baggage, in the limits."""
    members = baggage.get_all(context)
    if not members:
        return baggage.set_baggage(BAGGAGE_KEY, ctx.correlation_id, context)
    fits = _surely_fits(members, ctx.correlation_id)
    if members.get(BAGGAGE_KEY) == ctx.correlation_id and (fits or next(iter(members)) == BAGGAGE_KEY):
        return otel_context.get_current() if context is None else context
    if fits:
        return baggage.set_baggage(BAGGAGE_KEY, ctx.correlation_id, context)
    others = [(key, value) for key, value in members.items() if key != BAGGAGE_KEY]
    kept = _fitting(_encoded_length(BAGGAGE_KEY, ctx.correlation_id), others)
    if kept == len(others):
        return baggage.set_baggage(BAGGAGE_KEY, ctx.correlation_id, context)
    result = baggage.set_baggage(BAGGAGE_KEY, ctx.correlation_id, baggage.clear(context))
    for key, value in others[:kept]:
        result = baggage.set_baggage(key, value, result)
    logger.debug(
        "Dropped %d of %d incoming baggage members to keep %s within the W3C limits",
        len(others) - kept,
        len(others),
        BAGGAGE_KEY,
        extra={
            "correlation_id": ctx.correlation_id,
            "causation_id": ctx.causation_id or app_settings.LOG_EMPTY_VALUE,
        },
    )
    return result


def _surely_fits(members: Mapping[str, object], correlation_id: str) -> bool:
    """Whether the members and ours fit even if every character were percent-encoded (no encoding done)."""
    if len(members) >= MAX_MEMBERS:
        return False
    worst = 3 * (len(BAGGAGE_KEY) + len(correlation_id))
    for key, value in members.items():
        worst += 3 * (len(key) + len(str(value))) + 2
    return worst <= MAX_BYTES


def _fitting(used: int, others: list[tuple[str, object]]) -> int:
    """How many of ``others``, from the start, fit after a first member of ``used`` bytes."""
    count = 1
    for index, (key, value) in enumerate(others):
        length = _encoded_length(key, value)
        if length > _MAX_MEMBER_BYTES or count == MAX_MEMBERS or used + 1 + length > MAX_BYTES:
            return index
        used += 1 + length
        count += 1
    return len(others)


def _encoded_length(key: str, value: object) -> int:
    # As the SDK writes a member on inject.
    return len(quote_plus(str(key))) + 1 + len(quote_plus(str(value)))
