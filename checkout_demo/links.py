"""Where to look for an order's transaction: the admin trace pages and the terminal command."""

from __future__ import annotations

from django.urls import NoReverseMatch, reverse


def trace_path(correlation_id: str) -> str | None:
    """The admin trace page of ``correlation_id``, or None when the trace view is not installed."""
    try:
        return reverse("admin:tracing_app_trace_detail", args=[correlation_id])
    except NoReverseMatch:
        return None


def traces_path() -> str | None:
    """The admin's list of recent transactions, or None when the trace view is not installed."""
    try:
        return reverse("admin:tracing_app_trace_changelist")
    except NoReverseMatch:
        return None


def trace_command(correlation_id: str) -> str:
    return f"python manage.py trace {correlation_id}"
