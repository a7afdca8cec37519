"""Error views that show the correlation ID, so a user can quote it to support.

In the root URLconf::

    handler400 = "tracing_app.views.bad_request"
    handler403 = "tracing_app.views.permission_denied"
    handler404 = "tracing_app.views.page_not_found"
    handler500 = "tracing_app.views.server_error"

and optionally ``CSRF_FAILURE_VIEW = "tracing_app.views.csrf_failure"``.

Clients that prefer JSON get the API error envelope; browsers get ``tracing_app/<status>.html``
(override it in your templates directory). Pages render without a request context, so the 500 page
needs no database, session or user.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.views.decorators.csrf import requires_csrf_token

from tracing_app import ids
from tracing_app.conf import app_settings
from tracing_app.context import get_correlation_id
from tracing_app.envelope import error_payload

__all__ = [
    "bad_request",
    "csrf_failure",
    "page_not_found",
    "permission_denied",
    "server_error",
]

logger = logging.getLogger("tracing_app.views")


class ErrorKind(NamedTuple):
    status: int
    code: str
    title: str
    message: str


BAD_REQUEST = ErrorKind(400, "bad_request", "Bad request", "The request could not be understood.")
TOO_LARGE = ErrorKind(
    413, "request_too_large", "Request too large", "The request body is larger than this server accepts."
)
PERMISSION_DENIED = ErrorKind(
    403, "permission_denied", "Forbidden", "You do not have permission to perform this action."
)
CSRF_FAILED = ErrorKind(
    403, "csrf_failed", "Forbidden", "The form could not be verified. Reload the page and try again."
)
NOT_FOUND = ErrorKind(404, "not_found", "Page not found", "The page you asked for does not exist.")
SERVER_ERROR = ErrorKind(
    500, "server_error", "Server error", "Something went wrong on our side. We have logged it."
)

_FALLBACK_500 = (
    "<!doctype html><title>Server error</title><h1>Server error</h1>"
    "<p>Quote this ID to support: <code>{}</code></p>"
)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if isinstance(exception, RequestDataTooBig | TooManyFieldsSent | TooManyFilesSent):
        return render_error(request, TOO_LARGE)
    return render_error(request, BAD_REQUEST)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render_error(request, PERMISSION_DENIED)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render_error(request, NOT_FOUND)


@requires_csrf_token
def server_error(request: HttpRequest) -> HttpResponse:
    return render_error(request, SERVER_ERROR)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return render_error(request, CSRF_FAILED)


def render_error(request: HttpRequest, kind: ErrorKind) -> HttpResponse:
    """The error response for ``kind``: JSON envelope or HTML page, both carrying the correlation ID."""
    correlation_id = get_correlation_id() or getattr(request, "correlation_id", None)
    if correlation_id is None:
        # Reached outside the middleware (it is missing, or a middleware before it failed): the page
        # still needs an ID to quote, and the log line below is what support will find with it.
        correlation_id = ids.new_id()
        logger.warning("Error %s outside a transaction; quoted ID %s", kind.status, correlation_id)
    if _prefers_json(request):
        # The ID may be the fallback minted above, so ``meta`` is built here rather than from the context.
        body = {**error_payload(kind.code, kind.message), "meta": {"correlation_id": correlation_id}}
        response: HttpResponse = JsonResponse(body, status=kind.status)
    else:
        response = HttpResponse(_render_page(kind, correlation_id), status=kind.status)
    response[app_settings.HEADER] = correlation_id
    return response


def _prefers_json(request: HttpRequest) -> bool:
    preferred = request.get_preferred_type(["text/html", "application/json"])
    return preferred == "application/json"


def _render_page(kind: ErrorKind, correlation_id: str) -> str:
    context = {
        "status": kind.status,
        "title": kind.title,
        "message": kind.message,
        "correlation_id": correlation_id,
    }
    try:
        return loader.select_template([f"tracing_app/{kind.status}.html", "tracing_app/error.html"]).render(
            context
        )
    except Exception:
        if kind.status != SERVER_ERROR.status:
            raise
        # The 500 page must render even when templates are broken; the ID is a validated ULID or token.
        logger.exception("Could not render the 500 page")
        return _FALLBACK_500.format(correlation_id)
