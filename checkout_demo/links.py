"""Both ways between an order and its transaction: the admin trace pages and the terminal command for an
order, and (``TRACE_ADMIN_LINKS``) the order and its gateway charge for a trace."""

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


def admin_links(key: str, value: str) -> list[tuple[str, str]]:
    """The order admin page and the gateway charges for an ``order_id`` a trace recorded."""
    if key != "order_id" or not value.isdigit():
        return []
    order = reverse("admin:checkout_demo_order_change", args=[value])
    charges = reverse("admin:checkout_demo_gatewaycharge_changelist")
    return [(f"Order {value}", order), (f"Payment of order {value}", f"{charges}?q=order-{value}")]
