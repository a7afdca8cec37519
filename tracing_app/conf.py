"""The ``TRACING_APP`` settings dict: defaults, lazy reading and reloading.

Every other module reads settings through :data:`app_settings`. Values are read on first use and dropped
when Django's ``setting_changed`` fires, so ``override_settings(TRACING_APP=...)`` works in tests.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

#: RFC 9110 "token": the characters a header field name may use.
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

DEFAULTS: dict[str, Any] = {
    # Response/request header that carries the correlation ID.
    "HEADER": "X-Correlation-ID",
    # Further request headers read when HEADER is absent (e.g. nginx's "X-Request-ID").
    "ALTERNATE_HEADERS": (),
    # Adopt a valid incoming ID as this transaction's correlation ID. When False, a valid incoming ID is
    # kept as the causation ID (so the caller's ID still links) and a fresh correlation ID is minted.
    "TRUST_INCOMING": False,
    # Which incoming formats are valid: "ulid", "uuid" and "token" (ID_PATTERN up to MAX_ID_LENGTH).
    "ACCEPTED_FORMATS": ("ulid", "uuid", "token"),
    "ID_PATTERN": r"[A-Za-z0-9._:-]+",
    "MAX_ID_LENGTH": 128,
    # Add HEADER to Access-Control-Expose-Headers so browser code can read it (CORS).
    "EXPOSE_HEADER": False,
    # Log one INFO line per request on "tracing_app.access" inside the transaction (method, path,
    # status, duration), for log stores that need every request's ID.
    "ACCESS_LOG": False,
    # Share of transactions whose events are recorded (0.0 to 1.0); errors are always recorded.
    "SAMPLE_RATE": 1.0,
    # Trace events (tracing_app.traces.recorder): master switch; False records nothing, errors included.
    "TRACE_ENABLED": True,
    # Database alias the trace events are written to (a separate database keeps them off the main one).
    "TRACE_DATABASE": "default",
    # Seconds between background writes; a write also starts early once TRACE_BATCH_SIZE events wait.
    "TRACE_FLUSH_INTERVAL": 1.0,
    # Most events written by one statement (one COPY on PostgreSQL, one INSERT elsewhere).
    "TRACE_BATCH_SIZE": 500,
    # Most events one process holds while the database is slow or down; beyond it new events are
    # dropped (and counted in a warning) rather than growing memory.
    "TRACE_BUFFER_SIZE": 10_000,
    # Bound on one event's JSON attributes; longer strings are cut, deeper structures summarised.
    "TRACE_MAX_ATTRIBUTES_BYTES": 4096,
    # Request path prefixes whose requests record only their errors (health checks, static files, the
    # admin: support staff reading traces should not fill the list with their own page views).
    "TRACE_EXCLUDE_PATHS": (),
    # Record Celery task arguments (bounded, with TRACE_REDACT_KEYS masked) on "task.started" events.
    "TRACE_TASK_ARGUMENTS": True,
    # Attribute and keyword-argument names containing any of these (case-insensitive) are masked.
    "TRACE_REDACT_KEYS": ("password", "secret", "token", "authorization", "cookie", "api_key", "card"),
    # How long events are kept; `manage.py purge_traces` deletes older ones. A timedelta, seconds,
    # or a string such as "7d", "12h", "1d12h" or ISO 8601 "P7D".
    "TRACE_RETENTION": "7d",
    # Rows deleted per statement by purge_traces, so a purge never holds long locks.
    "TRACE_PURGE_BATCH_SIZE": 5000,
    # Transactions per page in the admin's trace list, and most events shown on one trace page.
    "TRACE_ADMIN_PAGE_SIZE": 50,
    "TRACE_MAX_EVENTS_SHOWN": 2000,
    # Task names (case-insensitive substrings) that undo a failed transaction's work: a failure followed
    # by one of them succeeding reads "compensated" rather than "failed".
    "TRACE_COMPENSATION_TASKS": ("compensate",),
    # Links from a trace to the records it touched: attribute key -> admin URL name taking the value as
    # its one argument (e.g. {"order_id": "admin:shop_order_change"}), or the dotted path of a function
    # (key, value) -> [(label, url), ...] called for every attribute.
    "TRACE_ADMIN_LINKS": {},
    # Idempotency (tracing_app.idempotency). Request header carrying the client's key.
    "IDEMPOTENCY_HEADER": "Idempotency-Key",
    # Longest client key accepted (characters, after unquoting); longer keys get a 400.
    "IDEMPOTENCY_KEY_MAX_LENGTH": 255,
    # Whether a request to an idempotent view without a key is refused (400) rather than run as is.
    "IDEMPOTENCY_REQUIRED": False,
    # Methods an idempotent view guards; other methods run untouched.
    "IDEMPOTENCY_METHODS": ("POST", "PUT", "PATCH", "DELETE"),
    # Views guarded without a decorator (needs tracing_app.idempotency.middleware.IdempotencyMiddleware):
    # URL names ("orders-list", "shop:orders-list") or dotted view paths, as a list, or a dict mapping
    # each to options of `idempotent()` (e.g. {"orders-list": {"required": True}}).
    "IDEMPOTENCY_VIEWS": (),
    # Seconds a record, and so its key, is kept: a repeat within it is replayed, after it runs afresh.
    # `manage.py purge_idempotency` deletes expired records.
    "IDEMPOTENCY_TTL": 24 * 60 * 60,
    # How a guarded view's claim commits on PostgreSQL: "transaction", together with the view's writes and
    # its stored response (one commit; a concurrent repeat waits for the first, then gets its replay);
    # "lease", on its own before the view (a repeat gets a fast 409; for views whose work is outside the
    # database). Other databases, and ATOMIC_REQUESTS on IDEMPOTENCY_DATABASE, always use "lease".
    "IDEMPOTENCY_MODE": "transaction",
    # Seconds a repeat waits for a first attempt still running in "transaction" mode before its 409.
    "IDEMPOTENCY_LOCK_TIMEOUT": 5,
    # Seconds an attempt owns its key before another attempt may take it over (HTTP and tasks).
    "IDEMPOTENCY_LEASE": 60,
    "IDEMPOTENCY_TASK_LEASE": 300,
    # Largest response body (bytes) stored for replay; a larger one keeps the key, not the body.
    "IDEMPOTENCY_MAX_RESPONSE_BYTES": 256 * 1024,
    # Response headers stored and replayed with the body (Set-Cookie never is).
    "IDEMPOTENCY_REPLAY_HEADERS": (
        "Content-Type",
        "Content-Language",
        "Content-Disposition",
        "Location",
        "ETag",
        "Last-Modified",
        "Link",
    ),
    # Error statuses treated as transient: not stored, writes rolled back, so a retry runs afresh
    # (5xx never is stored either).
    "IDEMPOTENCY_TRANSIENT_STATUSES": (408, 409, 425, 429),
    # Dotted path of a function(request) -> str naming who the client is (tenant, API client); by
    # default the authenticated user, or the session for anonymous requests (refused without one).
    "IDEMPOTENCY_SCOPE": None,
    # Database alias holding the records; side effects on it commit together with their record.
    "IDEMPOTENCY_DATABASE": "default",
    # Rows deleted per statement by purge_idempotency.
    "IDEMPOTENCY_PURGE_BATCH_SIZE": 1000,
    # What the log filter puts on records outside any transaction.
    "LOG_EMPTY_VALUE": "-",
    # Middleware that may stand before ours in MIDDLEWARE without a system check warning.
    "MIDDLEWARE_ALLOWED_BEFORE": (
        "django.middleware.security.SecurityMiddleware",
        "opentelemetry.instrumentation.django.middleware.otel_middleware._DjangoMiddleware",
    ),
    # Celery workers write one format per stream (tracing_app.celery.worker_logs): True, JSON lines on every
    # handler; False, text (Celery's lines keep Celery's format, with the correlation ID added); None,
    # JSON when LOGGING formats with JsonFormatter, else text. The filters are added either way.
    "CELERY_JSON_LOGS": None,
    # The project's own DRF exception handler (dotted path). tracing_app.rest.exception_handler calls it
    # instead of DRF's and puts what it answers in the error envelope, its codes kept.
    "DRF_EXCEPTION_HANDLER": None,
    # Transactional outbox (tracing_app.outbox). Database holding the outbox table: send_on_commit()
    # must run inside a transaction on it for the message to commit with the data.
    "OUTBOX_DATABASE": "default",
    # Run a relay thread in every `celery worker` (main process); without it, run `manage.py relay_outbox`.
    "OUTBOX_RELAY_IN_WORKER": True,
    # Seconds between the relay's polls when there is nothing to send.
    "OUTBOX_RELAY_INTERVAL": 1.0,
    # Seconds after commit before the relay takes a row: the committing process publishes it first.
    "OUTBOX_RELAY_DELAY": 5.0,
    # Rows one relay publishes per transaction.
    "OUTBOX_RELAY_BATCH_SIZE": 100,
    # Longest wait (seconds) between a relay's attempts while the broker or the database is down.
    "OUTBOX_RELAY_MAX_BACKOFF": 5.0,
    # OpenTelemetry (tracing_app.otel): instrument Django and Celery at startup (AppConfig.ready()), with
    # the TracerProvider already configured or one built from the OTEL_* environment variables.
    "OTEL_ENABLED": False,
    # With OpenTelemetry on, also instrument outgoing `requests` and `httpx` calls (when installed) so
    # they carry traceparent, baggage and HEADER.
    "OTEL_INSTRUMENT_HTTP": True,
}


class TracingSettings:
    """Attribute access to ``settings.TRACING_APP`` merged over :data:`DEFAULTS`.

    Resolved values are cached as instance attributes, so the hot path pays one attribute lookup.
    Derived values (``header_meta_key``, ``id_regex``) are computed here once, not per request.
    """

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        values = self._resolve()
        if name not in values:
            raise AttributeError(f"TRACING_APP has no setting {name!r}")
        self.__dict__.update(values)
        return values[name]

    @staticmethod
    def user_settings() -> dict[str, Any]:
        return dict(getattr(settings, "TRACING_APP", None) or {})

    def _resolve(self) -> dict[str, Any]:
        values = {**DEFAULTS, **self.user_settings()}
        values["header_meta_key"] = meta_key(values["HEADER"])
        values["alternate_meta_keys"] = tuple(meta_key(h) for h in values["ALTERNATE_HEADERS"])
        # The response header's key in Django's header store, for a name Django would accept unchanged.
        header = values["HEADER"]
        values["header_store_key"] = (
            header.lower() if isinstance(header, str) and HEADER_NAME.fullmatch(header) else None
        )
        values["id_regex"] = _compile_or_reject_all(values["ID_PATTERN"])
        values["accepted_formats"] = frozenset(values["ACCEPTED_FORMATS"])
        values["redact_regex"] = _redact_regex(values["TRACE_REDACT_KEYS"])
        return values

    def reload(self) -> None:
        self.__dict__.clear()


def meta_key(header: str) -> str:
    """The ``request.META`` key under which WSGI/ASGI handlers store ``header``."""
    return "HTTP_" + header.upper().replace("-", "_")


def _compile_or_reject_all(pattern: str) -> re.Pattern[str]:
    # A broken pattern is reported by system check tracing_app.E003; until it is fixed, incoming IDs
    # in the "token" format are rejected (and replaced) rather than every request failing.
    try:
        return re.compile(pattern)
    except (re.error, TypeError):
        return re.compile(r"(?!)")


def _redact_regex(words: Any) -> re.Pattern[str]:
    # Searched in a lowered key: found exactly when the key contains one of the words, lowered. A
    # setting that is not a list of strings masks every key until it is fixed: better than leaking.
    try:
        return re.compile("|".join(re.escape(word.lower()) for word in words) if words else r"(?!)")
    except (AttributeError, TypeError):
        return re.compile("")


app_settings = TracingSettings()


@receiver(setting_changed, dispatch_uid="tracing_app.conf.reload")
def _reload(setting: str, **kwargs: Any) -> None:
    if setting == "TRACING_APP":
        app_settings.reload()
