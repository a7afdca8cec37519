"""Fixtures for the OpenTelemetry tests: an enabled in-memory trace pipeline, a local HTTP server that
records the headers it receives, captured log records, an ASGI client, and the W3C test service over
real HTTP (WSGI and ASGI)."""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.support.waiting import wait_until
from tracing_app import otel
from tracing_app.logs import CorrelationIdFilter
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
        self.server.received.append((self.path, self.headers.items()))
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def header_server() -> Iterator[ThreadingHTTPServer]:
    """An HTTP server on 127.0.0.1 taking GET and POST; ``.seen`` lists each request's headers (lower-case
    names), ``.received`` each request's path and headers as sent (names repeat if a header did)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RecordingHandler)
    server.seen = []
    server.received = []
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
    """Records of the ``tests.otel``, ``tracing_app`` and ``opentelemetry`` loggers, through the correlation
    filter."""
    handler = _Collect()
    loggers = [logging.getLogger(name) for name in ("tests.otel", "tracing_app", "opentelemetry")]
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


@dataclass
class Service:
    """The W3C test service of tests/otel/urls.py, served over real HTTP by ``server``, calling onward
    with ``client``; callbacks land on ``callbacks`` (a :func:`header_server`)."""

    base_url: str
    path: str
    callbacks: ThreadingHTTPServer

    def call(
        self, headers: Sequence[tuple[str, str]], count: int = 1
    ) -> tuple[str, list[list[tuple[str, str]]]]:
        """Send ``headers`` (names may repeat) asking for ``count`` callbacks; returns the response's
        correlation ID and each callback's headers as received."""
        prefix = f"/callback/{uuid.uuid4().hex}/"
        body = json.dumps(
            [{"url": f"{server_url(self.callbacks)[:-1]}{prefix}{i}", "arguments": []} for i in range(count)]
        )
        host, port = urlsplit(self.base_url).hostname, urlsplit(self.base_url).port
        connection = http.client.HTTPConnection(host, port, timeout=10)
        try:
            connection.putrequest("POST", self.path)
            for name, value in headers:
                connection.putheader(name, value)
            connection.putheader("Content-Type", "application/json")
            connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body.encode())
            response = connection.getresponse()
            response.read()
        finally:
            connection.close()
        assert response.status == 204, response.status
        received = {path: items for path, items in self.callbacks.received if path.startswith(prefix)}
        return response.getheader("X-Correlation-ID"), [received[f"{prefix}{i}"] for i in range(count)]


@contextmanager
def _wsgi_server() -> Iterator[str]:
    server = ThreadedWSGIServer(("127.0.0.1", 0), _QuietWSGIRequestHandler, allow_reuse_address=False)
    server.set_app(WSGIHandler())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


class _QuietWSGIRequestHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def _asgi_server() -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(ASGIHandler(), lifespan="off", log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, what="uvicorn to start")
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


_ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def _server_process(*command: str) -> Iterator[str]:
    """``command`` (a server taking the port as ``{port}``) run with tests/otel/service_settings.py, as an
    outside user would: OpenTelemetry switched on by the ``OTEL_ENABLED`` setting at startup."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.otel.service_settings", "PYTHONPATH": str(_ROOT)}
    # A file, not a pipe: a pipe nobody reads fills up with log lines and stalls the server.
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(
            [sys.executable, "-m", *(part.format(port=port) for part in command)],
            cwd=_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(lambda: process.poll() is not None or _accepts(port), timeout=60, what="the server")
            if process.poll() is not None:
                output.seek(0)
                raise AssertionError(output.read().decode())
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=30)


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


# The server processes, by name; gunicorn refuses header lines over 8190 bytes by default (431), and the
# baggage cases go beyond.
_PROCESSES = {
    "gunicorn": (
        "gunicorn",
        *("--bind", "127.0.0.1:{port}", "--workers", "1", "--limit-request-field_size", "32768"),
        "django.core.wsgi:get_wsgi_application()",
    ),
    "uvicorn": (
        "uvicorn",
        *("--factory", "django.core.asgi:get_asgi_application", "--port", "{port}", "--lifespan", "off"),
    ),
}


@pytest.fixture(scope="module")
def server_processes() -> Iterator[Callable[[str], str]]:
    """Starts a server process of :data:`_PROCESSES` on first use; ``server_processes(name)`` is its URL.
    Each runs until the test module ends."""
    urls: dict[str, str] = {}
    with ExitStack() as stack:

        def url(name: str) -> str:
            if name not in urls:
                urls[name] = stack.enter_context(_server_process(*_PROCESSES[name]))
            return urls[name]

        yield url


#: Where the W3C service runs and which client it calls onward with (the view's path picks the client):
#: in this process (a server started once OpenTelemetry is enabled for the test), or in a gunicorn or
#: uvicorn process of its own (a name in :data:`_PROCESSES`).
SERVICES = {
    "wsgi-requests": (_wsgi_server, "/otel/w3c/requests/"),
    "wsgi-httpx": (_wsgi_server, "/otel/w3c/httpx/"),
    "asgi-requests": (_asgi_server, "/otel/w3c/requests/"),
    "asgi-httpx-async": (_asgi_server, "/otel/w3c-async/"),
    "gunicorn-requests": ("gunicorn", "/otel/w3c/requests/"),
    "gunicorn-httpx": ("gunicorn", "/otel/w3c/httpx/"),
    "uvicorn-requests": ("uvicorn", "/otel/w3c/requests/"),
    "uvicorn-httpx-async": ("uvicorn", "/otel/w3c-async/"),
}


@pytest.fixture(params=SERVICES.keys())
def w3c_service(request, spans, header_server, settings, server_processes) -> Iterator[Service]:
    """The W3C test service under each server and client of :data:`SERVICES`. In this process,
    OpenTelemetry is enabled before the server builds its handler (so OpenTelemetry's middleware is in it)."""
    settings.ROOT_URLCONF = "tests.otel.urls"
    serve, path = SERVICES[request.param]
    if isinstance(serve, str):
        yield Service(server_processes(serve), path, header_server)
        return
    with serve() as base_url:
        yield Service(base_url, path, header_server)
