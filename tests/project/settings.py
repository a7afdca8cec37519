"""The library's test settings: tracing_app with only what it needs (contrib apps, DRF, the test apps).

The database is SQLite in memory unless ``DATABASE_URL`` names another one; the tests marked ``services``
(real Celery workers sharing the database, PostgreSQL's locking and COPY) run with it pointing at
PostgreSQL. ``CELERY_BROKER_URL``, ``CELERY_RESULT_BACKEND`` and ``CELERY_TASK_DEFAULT_QUEUE`` are set by
the worker harness (tests/support/worker.py) for the processes it starts. ``TRACE_EVENTS=1`` switches
trace events on and ``TEST_OTEL=1`` OpenTelemetry, for those processes too.
"""

import os

import dj_database_url

SECRET_KEY = "tests-only-not-secret"
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "tracing_app",
    # Tasks and views that the real-worker tests run.
    "tests.taskapp",
    # The side-effect table the idempotency tests count rows in (no migrations: created with the test DB).
    "tests.idempotency",
]

MIDDLEWARE = [
    "tracing_app.middleware.CorrelationIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "tests.project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": dj_database_url.parse(os.environ.get("DATABASE_URL") or "sqlite://:memory:")}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STATIC_URL = "static/"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The app the worker harness starts (``celery -A tests.project.celery worker``) and publishes with.
TEST_CELERY_APP = "tests.project.celery"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "memory://")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", "cache+memory://")
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_TASK_SERIALIZER = CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]

# Trace events are written by a background thread. Only the tests that read them switch them on (with
# override_settings, or TRACE_EVENTS=1 for processes they start), so other tests write no rows behind
# their backs.
TRACING_APP = {
    "TRUST_INCOMING": True,
    "ALTERNATE_HEADERS": ["X-Request-ID"],
    "EXPOSE_HEADER": True,
    "ACCESS_LOG": True,
    "OTEL_ENABLED": os.environ.get("TEST_OTEL") == "1",
    "TRACE_EXCLUDE_PATHS": ("/admin/", "/static/", "/favicon.ico"),
    "TRACE_ENABLED": os.environ.get("TRACE_EVENTS") == "1",
    "TRACE_FLUSH_INTERVAL": float(os.environ.get("TRACE_FLUSH_INTERVAL", "1.0")),
}

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["tracing_app.rest.EnvelopeJSONRenderer"],
    "EXCEPTION_HANDLER": "tracing_app.rest.exception_handler",
}

# JSON lines with the correlation ID, as a project using tracing_app logs; the worker tests read them.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"correlation": {"()": "tracing_app.logs.CorrelationIdFilter"}},
    "formatters": {"json": {"()": "tracing_app.logs.JsonFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["correlation"], "formatter": "json"},
        "trace_events": {"class": "tracing_app.traces.log_handler.TraceEventHandler", "level": "WARNING"},
    },
    "root": {"handlers": ["console", "trace_events"], "level": "INFO"},
}
