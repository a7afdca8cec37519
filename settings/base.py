"""The demo project's settings, shared by every environment.

Environment variables switch the embedded defaults to real servers with no code change:
``DATABASE_URL`` (default: SQLite under ``var/``) and ``CELERY_BROKER_URL``.
"""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("TRACING_DEMO_VAR", BASE_DIR / "var"))

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "tracing_app",
    "checkout_demo",
]

MIDDLEWARE = [
    "tracing_app.middleware.CorrelationIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves the collected static files (the admin's CSS and JS) from the application server itself.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "settings.urls"
WSGI_APPLICATION = "settings.wsgi.application"
ASGI_APPLICATION = "settings.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'demo.sqlite3'}"),
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and a Celery worker write at once: WAL lets readers run beside the one writer,
    # IMMEDIATE takes the write lock when a transaction starts (no failed lock upgrades mid-way), and
    # writers queue for up to `timeout` seconds instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

# Celery: a real broker from CELERY_BROKER_URL (amqp://..., redis://...), or by default kombu's filesystem
# transport under VAR_DIR, which needs no daemon. Results likewise: CELERY_RESULT_BACKEND or files.
EMBEDDED_BROKER_DIR = VAR_DIR / "broker"
EMBEDDED_RESULTS_DIR = VAR_DIR / "results"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://localhost//")
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(EMBEDDED_BROKER_DIR / "messages"),
        "data_folder_out": str(EMBEDDED_BROKER_DIR / "messages"),
        "control_folder": str(EMBEDDED_BROKER_DIR / "control"),
        "store_processed": False,
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else {}
)
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", f"file://{EMBEDDED_RESULTS_DIR}")
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_TASK_SERIALIZER = CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# `celery beat` (started by `manage.py rundemo`) runs the checkout reconciler; a run that could not be
# sent in time is dropped, the next one does its work.
RECONCILE_INTERVAL = float(os.environ.get("DEMO_RECONCILE_INTERVAL", "10"))
CELERY_BEAT_SCHEDULE = {
    "checkout-demo-reconcile-orders": {
        "task": "checkout_demo.reconcile_orders",
        "schedule": RECONCILE_INTERVAL,
        "options": {"expires": RECONCILE_INTERVAL},
    }
}
# Orders stuck half-way are resumed after DEMO_RECONCILE_AFTER seconds (see checkout_demo.conf).
CHECKOUT_DEMO = {"RECONCILE_AFTER": float(os.environ.get("DEMO_RECONCILE_AFTER", "60"))}

STATIC_URL = "static/"
# `rundemo` collects the static files here before the web server starts.
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Gzipped copies made at collect time; names stay unhashed, so pages render even before a collect
    # (tests, a plain runserver).
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# The embedded database, broker, result backend and static files expect their folders to exist (a fresh
# clone has none).
for _folder in (
    EMBEDDED_BROKER_DIR / "messages",
    EMBEDDED_BROKER_DIR / "control",
    EMBEDDED_RESULTS_DIR,
    STATIC_ROOT,
):
    _folder.mkdir(parents=True, exist_ok=True)

AUTH_PASSWORD_VALIDATORS = []
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TRACING_APP = {
    "TRUST_INCOMING": True,
    "ALTERNATE_HEADERS": ["X-Request-ID"],
    "EXPOSE_HEADER": True,
    "ACCESS_LOG": True,
    # DEMO_OTEL=1 turns on OpenTelemetry, configured by the standard OTEL_* variables (OTEL_SERVICE_NAME,
    # OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_TRACES_EXPORTER...).
    "OTEL_ENABLED": os.environ.get("DEMO_OTEL", "") == "1",
    # Staff browsing the admin (the Traces pages included) and static files record only their errors.
    "TRACE_EXCLUDE_PATHS": ("/admin/", "/static/", "/favicon.ico"),
    # The trace page links an order_id it recorded to the order and to the gateway's charge for it.
    "TRACE_ADMIN_LINKS": "checkout_demo.links.admin_links",
}

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["tracing_app.rest.EnvelopeJSONRenderer"],
    "EXCEPTION_HANDLER": "tracing_app.rest.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "checkout_demo.openapi.EnvelopeAutoSchema",
}

# The demo API's OpenAPI schema: /api/schema/ (YAML, or JSON with ?format=json) and /api/docs/ (Swagger UI).
SPECTACULAR_SETTINGS = {
    "TITLE": "tracing_app checkout demo API",
    "DESCRIPTION": (
        'Orders and checkout. Every response is an envelope: {"data": ..., "meta": {"correlation_id"}} '
        'or {"error": {"code", "message", "details"}, "meta": {...}}; the same ID is in the '
        "X-Correlation-ID response header."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"correlation": {"()": "tracing_app.logs.CorrelationIdFilter"}},
    "formatters": {"json": {"()": "tracing_app.logs.JsonFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["correlation"],
            "formatter": "json",
        },
        # WARNING and above inside a transaction also go to its trace (the admin's Traces page).
        "trace_events": {"class": "tracing_app.traces.log_handler.TraceEventHandler", "level": "WARNING"},
    },
    "root": {"handlers": ["console", "trace_events"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
