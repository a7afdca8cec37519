"""Outgoing HTTP: carry the transaction to the services a request or a task calls.

With OpenTelemetry enabled (``OTEL_ENABLED``) and ``OTEL_INSTRUMENT_HTTP`` (default on), every
``requests`` and ``httpx`` call made inside a transaction carries ``traceparent`` (``tracestate``),
``baggage`` with the correlation ID, and the correlation header (``HEADER``, ``X-Correlation-ID``): the
OpenTelemetry instrumentations inject the W3C headers and call the hooks of
:mod:`tracing_app.outgoing_correlation` for ours. Nothing to change in calling code.

Without OpenTelemetry (or for a client the instrumentation does not see), wire the client once::

    session = requests.Session()
    session.mount("http://", PropagatingAdapter())
    session.mount("https://", PropagatingAdapter(max_retries=3))  # an HTTPAdapter: same options

    httpx.Client(event_hooks={"request": [tracing_app.outgoing_http.httpx_hook]})
    httpx.AsyncClient(event_hooks={"request": [tracing_app.outgoing_http.httpx_async_hook]})

or add :func:`outgoing_headers` to any other client's request. Headers the caller set are never replaced.

A third party that must not join the trace (it cannot carry the headers on, or calls back much later):
wrap the call in :func:`detached_trace`. The call then runs in a new trace whose root span links to the
caller's span and records the caller's ``traceparent`` and correlation ID as attributes; no baggage and
no correlation header leave for it.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

from tracing_app import otel
from tracing_app.context import current
from tracing_app.outgoing_correlation import add_correlation_header, withheld

__all__ = [
    "add_headers",
    "detached_trace",
    "httpx_async_hook",
    "httpx_hook",
    "outgoing_headers",
]

try:
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
except ImportError:  # the "otel" extra is not installed: the correlation header still travels
    trace = None  # type: ignore[assignment]

try:
    from requests.adapters import HTTPAdapter
except ImportError:  # requests is optional
    HTTPAdapter = None  # type: ignore[assignment,misc]

#: Span attribute recording the caller's traceparent on a :func:`detached_trace` root span.
CALLER_ATTRIBUTE = "tracing_app.caller_traceparent"


def outgoing_headers() -> dict[str, str]:
    """The headers carrying the current transaction: the correlation header and, while a trace is
    current, ``traceparent`` / ``tracestate`` / ``baggage``. Empty outside any transaction and trace.
    """
    headers: dict[str, str] = {}
    add_headers(headers)
    return headers


def add_headers(headers: MutableMapping[str, str]) -> None:
    """Add :func:`outgoing_headers` to ``headers`` in place, keeping any the caller already set."""
    if trace is not None:
        injected: dict[str, str] = {}
        propagate.inject(injected)
        for name, value in injected.items():
            if name not in headers:
                headers[name] = value
    add_correlation_header(headers)


# -- explicit wiring, without the instrumentation -------------------------------------------------------


def httpx_hook(request: Any) -> None:
    """``httpx.Client(event_hooks={"request": [httpx_hook]})``."""
    add_headers(request.headers)


async def httpx_async_hook(request: Any) -> None:
    """``httpx.AsyncClient(event_hooks={"request": [httpx_async_hook]})``."""
    add_headers(request.headers)


if HTTPAdapter is not None:

    class PropagatingAdapter(HTTPAdapter):
        """A ``requests`` transport adapter adding :func:`outgoing_headers` to every request it sends."""

        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            add_headers(request.headers)
            return super().send(request, *args, **kwargs)


@contextmanager
def detached_trace(name: str) -> Iterator[Any]:
    """Run a call to a third party in a new trace linked to the current one; see the module docstring.

    Yields the new root span (None without OpenTelemetry enabled; the correlation header is withheld
    either way). Calls made inside carry only the new trace's ``traceparent``.
    """
    with withheld():
        tracer = otel.tracer("tracing_app.http") if otel.is_enabled() else None
        if tracer is None:
            yield None
            return
        caller = trace.get_current_span().get_span_context()
        attributes: dict[str, str] = {}
        links = None
        if caller.is_valid:
            links = [trace.Link(caller)]
            attributes[CALLER_ATTRIBUTE] = otel.current_traceparent() or ""
        ctx = current()
        if ctx is not None:
            attributes[otel.ATTRIBUTE] = ctx.correlation_id
        # An empty context: neither the caller's span nor its baggage goes along.
        detached = otel_context.attach(otel_context.Context())
        try:
            with tracer.start_as_current_span(
                name, kind=trace.SpanKind.INTERNAL, links=links, attributes=attributes
            ) as span:
                yield span
        finally:
            otel_context.detach(detached)
