"""The correlation header on outgoing requests, and the OpenTelemetry instrumentation hooks that add it.

Kept apart from :mod:`tracing_app.outgoing_http` so the OpenTelemetry wiring can hand these hooks to the
``requests`` and ``httpx`` instrumentations without importing what imports the wiring.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from tracing_app.conf import app_settings
from tracing_app.context import current

# True inside withheld(): no correlation header is added there.
_withheld: ContextVar[bool] = ContextVar("tracing_app.outgoing_correlation.withheld", default=False)


@contextmanager
def withheld() -> Iterator[None]:
    """Add no correlation header to requests sent inside the block (a detached third-party call)."""
    token = _withheld.set(True)
    try:
        yield
    finally:
        _withheld.reset(token)


def add_correlation_header(headers: MutableMapping[str, str]) -> None:
    """Add the current correlation ID as ``HEADER`` unless the caller set it, outside any transaction,
    or inside :func:`withheld`."""
    ctx = current()
    if ctx is None or _withheld.get():
        return
    if app_settings.HEADER not in headers:
        headers[app_settings.HEADER] = ctx.correlation_id


def otel_requests_hook(span: Any, request: Any) -> None:
    """``RequestsInstrumentor`` request hook: adds the correlation header to the prepared request."""
    add_correlation_header(request.headers)


def otel_httpx_hook(span: Any, request: Any) -> None:
    """``HTTPXClientInstrumentor`` request hook (sync clients)."""
    add_correlation_header(request.headers)


async def otel_httpx_async_hook(span: Any, request: Any) -> None:
    """``HTTPXClientInstrumentor`` request hook (async clients)."""
    add_correlation_header(request.headers)
