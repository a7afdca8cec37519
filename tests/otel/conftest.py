"""Fixtures for the OpenTelemetry tests: an enabled in-memory trace pipeline, a local HTTP server that
records the headers it receives, captured log records, and an ASGI client."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from django.core.handlers.asgi import ASGIHandler
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tracing_app import otel
from tracing_app.logging import CorrelationIdFilter
from tracing_app.otel.sampling import transaction_sampler


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """OpenTelemetry enabled for the test with the project's sampler; finished spans land here."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=transaction_sampler())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    assert otel.enable(tracer_provider=provider)
    try:
        yield exporter
    finally:
        otel.disable()


class _RecordingHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.seen.append({name.lower(): value for name, value in self.headers.items()})
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def header_server() -> Iterator[ThreadingHTTPServer]:
    """An HTTP server on 127.0.0.1; ``.seen`` lists each request's headers (lower-case names)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RecordingHandler)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def server_url(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.addFilter(CorrelationIdFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def log_records() -> Iterator[list[logging.LogRecord]]:
    """Records of the ``tests.otel`` and ``tracing_app`` loggers, through the correlation filter."""
    handler = _Collect()
    loggers = [logging.getLogger(name) for name in ("tests.otel", "tracing_app")]
    saved = [(lg, lg.level) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    try:
        yield handler.records
    finally:
        for lg, level in saved:
            lg.removeHandler(handler)
            lg.setLevel(level)


def asgi_get(path: str, headers: list[tuple[str, str]] | None = None) -> httpx.Response:
    """GET ``path`` through Django's ASGI handler (built now, so it loads the current middleware)."""
    application = ASGIHandler()

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get(path, headers=headers)

    return asyncio.run(call())
