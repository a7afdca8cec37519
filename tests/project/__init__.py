"""The project the library's tests run in. Importing the Celery app here loads it when Django starts, as a
project's own package does, so its wiring is in place before the first test."""

from tests.project.celery import app as celery_app

__all__ = ["celery_app"]
