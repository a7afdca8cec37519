"""The API envelope for Django REST framework.

Every API response has one of two shapes, and ``meta`` is the same in both::

    {"data": <payload>, "meta": {"correlation_id": "01J..."}}
    {"error": {"code": "invalid", "message": "Invalid input.", "details": {...}},
     "meta": {"correlation_id": "01J..."}}

Enable it with::

    REST_FRAMEWORK = {
        "DEFAULT_RENDERER_CLASSES": [
            "tracing_app.rest.EnvelopeJSONRenderer",
            "rest_framework.renderers.BrowsableAPIRenderer",  # optional: its pages show the envelope
        ],
        "EXCEPTION_HANDLER": "tracing_app.rest.exception_handler",
    }

A project with an exception handler of its own names it in ``TRACING_APP["DRF_EXCEPTION_HANDLER"]``:
``exception_handler`` calls it instead of DRF's and wraps what it answers once, keeping its codes.

A paginated payload stays whole inside ``data``. A view opts out with the class attribute
``envelope = False`` (function views: ``@renderer_classes([JSONRenderer])``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from django.utils.module_loading import import_string
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from tracing_app.conf import app_settings
from tracing_app.envelope import ErrorPayload, error_body, error_payload, meta

__all__ = ["EnvelopeJSONRenderer", "error_body", "exception_handler"]


class EnvelopeJSONRenderer(JSONRenderer):
    """JSON renderer that wraps payloads in ``data`` and errors in ``error``, both with ``meta``."""

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        context = renderer_context or {}
        response: Response | None = context.get("response")
        if response is None or not getattr(context.get("view"), "envelope", True):
            return super().render(data, accepted_media_type, renderer_context)
        if isinstance(data, ErrorPayload):
            body = {**data, "meta": meta()}
        elif response.status_code >= 400:
            body = _status_error(response.status_code, data)
        elif data is None and response.status_code == HTTPStatus.NO_CONTENT:
            return b""
        else:
            body = {"data": data, "meta": meta()}
        return super().render(body, accepted_media_type, renderer_context)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler (or the project's own, ``DRF_EXCEPTION_HANDLER``), its body put in the error envelope.

    What the project's handler answers is kept: a ``code`` and a ``message`` (or ``detail``) in its body
    become the envelope's, the rest of the body its ``details``; without them the exception's DRF code
    and message are used. Exceptions no handler answers propagate; Django's ``handler500``
    (``tracing_app.views.server_error``) then answers JSON clients with the same envelope.
    """
    handler = _project_handler(app_settings.DRF_EXCEPTION_HANDLER)
    response = handler(exc, context)
    if response is None or isinstance(response.data, ErrorPayload):
        return response
    code, message, details = _drf_error(exc, response.status_code)
    if handler is drf_exception_handler:
        response.data = error_payload(code, message, details)
    else:
        response.data = _project_error(response.data, code, message)
    return response


@functools.lru_cache(maxsize=4)
def _project_handler(path: str | None) -> Callable[[Exception, dict[str, Any]], Response | None]:
    return import_string(path) if path else drf_exception_handler


def _drf_error(exc: Exception, status: int) -> tuple[str, str, Any]:
    """(code, message, details) of an exception as DRF describes it (Django's ``Http404`` and
    ``PermissionDenied`` as the API exceptions DRF's handler turns them into)."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    if isinstance(exc, exceptions.ValidationError):
        return "invalid", "Invalid input.", exc.detail
    if isinstance(exc, exceptions.APIException):
        code = exc.get_codes()
        message = exc.detail
        return (
            code if isinstance(code, str) else exc.default_code,
            str(message) if isinstance(message, str) else str(exc.default_detail),
            None if isinstance(message, str) else message,
        )
    error = _status_error(status, None)["error"]
    return error["code"], error["message"], None


def _project_error(data: Any, code: str, message: str) -> ErrorPayload:
    """The envelope of a body the project's handler wrote, in whatever shape."""
    if not isinstance(data, dict):
        return error_payload(code, message, data)
    rest = dict(data)
    own_code = rest.pop("code", None)
    own_message = rest.pop("message", None) or rest.pop("detail", None)
    return error_payload(
        own_code if isinstance(own_code, str) else code,
        str(own_message) if own_message is not None else message,
        rest or None,
    )


def _status_error(status: int, data: Any) -> dict[str, Any]:
    """An error body for a view that returned an error status itself, without raising."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    code = phrase.lower().replace(" ", "_").replace("-", "_")
    return error_body(code, f"{phrase}.", data)
