"""One hot path run ``N`` times in a process of its own, for :mod:`benchmarks.instructions` to count.

``python -m benchmarks.instruction_paths PATH N``: Django is configured for that path alone (SQLite in
memory, no trace events, no access log), 50 warm-up operations run, then ``N`` measured ones.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

# Middleware and its settings for each HTTP path: ours with the ID only, and the ID-only libraries.
EDGES: dict[str, tuple[list[str], list[str], dict[str, Any]]] = {
    "bare": ([], [], {}),
    "tracing_app": (["tracing_app.middleware.CorrelationIdMiddleware"], [], {}),
    "django_guid": (["django_guid.middleware.guid_middleware"], ["django_guid"], {"DJANGO_GUID": {}}),
    "log_request_id": (
        ["log_request_id.middleware.RequestIDMiddleware"],
        [],
        {
            "LOG_REQUEST_ID_HEADER": "HTTP_X_REQUEST_ID",
            "GENERATE_REQUEST_ID_IF_NOT_IN_HEADER": True,
            "REQUEST_ID_RESPONSE_HEADER": "X-Request-ID",
        },
    ),
    "django_cid": (
        ["cid.middleware.CidMiddleware"],
        ["cid"],
        {
            "CID_GENERATE": True,
            "CID_HEADER": "HTTP_X_CORRELATION_ID",
            "CID_RESPONSE_HEADER": "X-Correlation-ID",
        },
    ),
}
PATHS = (*EDGES, "log_filter", "publish_bare", "publish")

WARM_UP = 50


def configure(path: str) -> None:
    import django
    from django.conf import settings

    middleware, apps, extra = EDGES.get(path, ([], [], {}))
    settings.configure(
        DEBUG=False,
        SECRET_KEY="benchmarks-only",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF="benchmarks.urls",
        INSTALLED_APPS=["django.contrib.contenttypes", "tracing_app", *apps],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        MIDDLEWARE=middleware,
        TRACING_APP={"TRACE_ENABLED": False, "ACCESS_LOG": False},
        LOGGING_CONFIG=None,
        **extra,
    )
    django.setup()


def requests(n: int) -> None:
    from django.core.handlers.wsgi import WSGIHandler

    from benchmarks.http_inprocess import environ_for

    application = WSGIHandler()

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        return None

    for _ in range(WARM_UP + n):
        b"".join(application(environ_for("plain"), start_response))


def log_records(n: int) -> None:
    from tracing_app.context import bind
    from tracing_app.logs import CorrelationIdFilter

    correlation = CorrelationIdFilter()
    with bind():
        for _ in range(WARM_UP + n):
            correlation.filter(
                logging.LogRecord("bench", logging.INFO, __file__, 1, "paid %s", ("ord-1",), None)
            )


def publishes(n: int, *, traced: bool) -> None:
    from celery import Celery, signals

    from tracing_app.context import bind

    app = Celery("benchmarks", broker="memory://")
    if traced:
        from tracing_app.celery import install

        install(app)
    with bind():
        for _ in range(WARM_UP + n):
            signals.before_task_publish.send(
                sender="bench.task",
                body=((), {}, {}),
                routing_key="celery",
                headers={"id": "t", "task": "bench.task"},
            )


def main(path: str, n: int) -> None:
    configure(path)
    if path in EDGES:
        requests(n)
    elif path == "log_filter":
        log_records(n)
    else:
        publishes(n, traced=path == "publish")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
