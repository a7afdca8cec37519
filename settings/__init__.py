"""The demo project. Importing the Celery app here binds ``@shared_task`` tasks to it in every process."""

from settings.celery import app as celery_app

__all__ = ["celery_app"]
