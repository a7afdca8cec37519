"""Django settings for benchmark processes only; the product's and the demo's settings are never used.

``BENCH_EDGE`` picks the edge configuration (middleware, apps, settings) and ``BENCH_DATABASE_URL``, when
set, the database (sections that measure without a database leave it unset).
"""

import os

import dj_database_url

from benchmarks.edge_configs import current

_config = current()

SECRET_KEY = "benchmark-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ROOT_URLCONF = _config.urlconf
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    *_config.apps,
]
MIDDLEWARE = list(_config.middleware)

DATABASES = (
    {"default": dj_database_url.parse(os.environ["BENCH_DATABASE_URL"], conn_max_age=600)}
    if os.environ.get("BENCH_DATABASE_URL")
    else {}
)

# The trivial DRF view needs no authentication, and JSON only, so every configuration renders the same.
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
}

# Configuration-specific settings override the shared ones above.
globals().update(_config.settings)
