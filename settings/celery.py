"""The demo project's Celery app: ``celery -A settings.celery worker``.

Broker and result backend come from Django settings (``CELERY_*``; see ``settings/base.py``).
"""

import os

from celery import Celery

from tracing_app.celery import install

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.demo")

app = Celery("tracing_demo")
app.config_from_object("django.conf:settings", namespace="CELERY")
install(app)
app.autodiscover_tasks()
