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
    # Share of transactions whose events are recorded (0.0 to 1.0); errors are always recorded.
    "SAMPLE_RATE": 1.0,
    # What the log filter puts on records outside any transaction.
    "LOG_EMPTY_VALUE": "-",
    # Middleware that may stand before ours in MIDDLEWARE without a system check warning.
    "MIDDLEWARE_ALLOWED_BEFORE": (
        "django.middleware.security.SecurityMiddleware",
        "opentelemetry.instrumentation.django.middleware.otel_middleware._DjangoMiddleware",
    ),
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
        values["header_lower"] = values["HEADER"].lower()
        values["id_regex"] = re.compile(values["ID_PATTERN"])
        values["accepted_formats"] = frozenset(values["ACCEPTED_FORMATS"])
        return values

    def reload(self) -> None:
        self.__dict__.clear()


def meta_key(header: str) -> str:
    """The ``request.META`` key under which WSGI/ASGI handlers store ``header``."""
    return "HTTP_" + header.upper().replace("-", "_")


app_settings = TracingSettings()


@receiver(setting_changed, dispatch_uid="tracing_app.conf.reload")
def _reload(setting: str, **kwargs: Any) -> None:
    if setting == "TRACING_APP":
        app_settings.reload()
