"""Settings of the idempotency section's in-process worker: the benchmark settings for the "idempotency"
edge configuration, plus the two idempotency libraries measured beside tracing_app on the same view and
database.

- django-idempotency-key: its opt-in middleware, responses kept in Django's database cache on the
  benchmark database, its in-process lock.
- drf-idempotency: its ``@idempotent`` decorator with its database backend (its own table, migrated by
  the worker).

Without them installed (``--group bench``) the section measures tracing_app alone and says so.
"""

import importlib.util

from benchmarks import django_settings as _base

globals().update({name: value for name, value in vars(_base).items() if name.isupper()})

ANCHORS = {
    "django-idempotency-key": importlib.util.find_spec("idempotency_key") is not None,
    "drf-idempotency": importlib.util.find_spec("drf_idempotency") is not None,
}

ROOT_URLCONF = "benchmarks.idempotency_anchor_urls"
INSTALLED_APPS = [*_base.INSTALLED_APPS, *(["drf_idempotency"] if ANCHORS["drf-idempotency"] else [])]
MIDDLEWARE = [
    *_base.MIDDLEWARE,
    *(
        ["idempotency_key.middleware.ExemptIdempotencyKeyMiddleware"]
        if ANCHORS["django-idempotency-key"]
        else []
    ),
]

CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "idempotency_key": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "bench_idempotency_key_cache",
    },
}
IDEMPOTENCY_KEY = {
    # A repeat gets the stored response with its own status, as tracing_app's replay does (not a 409).
    "CONFLICT_STATUS_CODE": None,
    "STORAGE": {"CLASS": "idempotency_key.storage.CacheKeyStorage", "CACHE_NAME": "idempotency_key"},
}
IDEMPOTENCY = {"BACKEND": "drf_idempotency.backends.database.DatabaseBackend"}
