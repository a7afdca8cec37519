"""The library tests' Celery app: ``celery -A tests.project.celery worker``, as tests/support/worker.py
runs it."""

import os

from celery import Celery

from tracing_app.celery import install

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.project.settings")

app = Celery("tracing_tests")
app.config_from_object("django.conf:settings", namespace="CELERY")
install(app)
app.autodiscover_tasks()
