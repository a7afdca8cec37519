"""Check that a project with Celery installed has wired tracing_app into its Celery app."""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any

from django.core.checks import CheckMessage, Warning


def check_celery_installed(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Warn when Celery is importable but tasks would travel without the correlation ID."""
    if find_spec("celery") is None:
        return []
    # Imported here: projects without Celery never load tracing_app's Celery edge.
    from tracing_app.celery import is_installed

    if is_installed():
        return []
    return [
        Warning(
            "Celery is installed but tracing_app is not wired into a Celery app: tasks and worker logs "
            "will not carry the correlation ID.",
            hint="Call tracing_app.celery.install(app) where the Celery app is created, and import that "
            "module from your project's __init__.py. Silence this check if the project does not use Celery.",
            id="tracing_app.W301",
        )
    ]
