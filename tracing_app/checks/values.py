"""Shared checks of single ``TRACING_APP`` values, each reported under the ID its caller gives."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import CheckMessage, Error
from django.utils.module_loading import import_string

from tracing_app.conf import app_settings


def positive_numbers(names: tuple[str, ...], check_id: str) -> list[CheckMessage]:
    """An error for each of the ``TRACING_APP`` keys ``names`` that is not a positive number."""
    return [
        Error(f"TRACING_APP[{name!r}] must be a positive number, not {value!r}.", id=check_id)
        for name in names
        if not _is_positive_number(value := getattr(app_settings, name))
    ]


def _is_positive_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and value > 0


def known_database(name: str, check_id: str) -> list[CheckMessage]:
    """An error when the ``TRACING_APP`` key ``name`` names a database alias missing from DATABASES."""
    alias = getattr(app_settings, name)
    if alias in settings.DATABASES:
        return []
    return [Error(f"TRACING_APP[{name!r}] is {alias!r}, which is not in DATABASES.", id=check_id)]


def importable(name: str, dotted_path: str, check_id: str) -> list[CheckMessage]:
    """An error when ``dotted_path``, the value of the ``TRACING_APP`` key ``name``, cannot be imported."""
    try:
        import_string(dotted_path)
    except ImportError as exc:
        return [Error(f"TRACING_APP[{name!r}] cannot be imported: {exc}.", id=check_id)]
    return []
