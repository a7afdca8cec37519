"""The benchmark WSGI application, for in-process timing and for gunicorn alike.

The configuration's ``prepare`` hook runs after ``django.setup()`` and before the handler loads its
middleware, the one moment where instrumentation that edits ``MIDDLEWARE`` (OpenTelemetry) must run.
"""

import os

import django
from django.core.handlers.wsgi import WSGIHandler

from benchmarks.edge_configs import current

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.django_settings")
django.setup(set_prefix=False)
_config = current()
if _config.prepare is not None:
    _config.prepare()
application = WSGIHandler()
