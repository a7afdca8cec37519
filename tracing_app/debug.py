"""Django's ``DEBUG=True`` error page, with the correlation ID on it.

Under ``DEBUG`` Django answers an unhandled exception with its technical page, not ``handler500``; with
``DEFAULT_EXCEPTION_REPORTER = "tracing_app.debug.CorrelationIdExceptionReporter"`` that page (and its
plain-text version, sent to ``curl`` and in error e-mails) shows the ID the logs carry.
"""

from __future__ import annotations

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.views.debug import ExceptionReporter

from tracing_app.context import get_correlation_id

__all__ = [
    "CorrelationIdExceptionReporter",
]

_SUMMARY = '<header id="summary">'


class CorrelationIdExceptionReporter(ExceptionReporter):
    """Puts the request's correlation ID first in the summary of the technical error page."""

    def correlation_id(self) -> str | None:
        return getattr(self.request, "correlation_id", None) or get_correlation_id()

    def get_traceback_html(self) -> SafeString:
        page = super().get_traceback_html()
        correlation_id = self.correlation_id()
        if not correlation_id:
            return page
        banner = format_html(
            '<p id="correlation-id"><strong>Correlation ID:</strong> <code>{}</code></p>', correlation_id
        )
        # The page is Django's own markup and the banner is escaped: the result is as safe as the page.
        return mark_safe(page.replace(_SUMMARY, _SUMMARY + banner, 1))  # noqa: S308

    def get_traceback_text(self) -> SafeString:
        text = super().get_traceback_text()
        correlation_id = self.correlation_id()
        return mark_safe(f"Correlation ID: {correlation_id}\n{text}") if correlation_id else text  # noqa: S308
