"""The API envelope for Django REST framework.

Every API response has one of two shapes, and ``meta`` is the same in both::

    {"data": <payload>, "meta": {"correlation_id": "01J..."}}
    {"error": {"code": "invalid", "message": "Invalid input.", "details": {...}},
     "meta": {"correlation_id": "01J..."}}

Enable it with::

    REST_FRAMEWORK = {
        "DEFAULT_RENDERER_CLASSES": ["tracing_app.rest.EnvelopeJSONRenderer"],
        "EXCEPTION_HANDLER": "tracing_app.rest.exception_handler",
    }

A paginated payload stays whole inside ``data``. A view opts out with the class attribute
``envelope = False`` (function views: ``@renderer_classes([JSONRenderer])``).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from tracing_app.envelope import ErrorPayload, error_body, error_payload, meta

__all__ = ["EnvelopeJSONRenderer", "error_body", "exception_handler"]


class EnvelopeJSONRenderer(JSONRenderer):
    """JSON renderer that wraps payloads in ``data`` and errors in ``error``, both with ``meta``."""

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: dict[str, Any] | None = None,
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
    """DRF's handler, with the response body replaced by the error envelope.

    Exceptions DRF does not handle propagate; Django's ``handler500`` (``tracing_app.views.server_error``)
    then answers JSON clients with the same envelope.
    """
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_payload("invalid", "Invalid input.", exc.detail)
    elif isinstance(exc, exceptions.APIException):
        code = exc.get_codes()
        message = exc.detail
        response.data = error_payload(
            code if isinstance(code, str) else exc.default_code,
            str(message) if isinstance(message, str) else str(exc.default_detail),
            None if isinstance(message, str) else message,
        )
    return response


def _status_error(status: int, data: Any) -> dict[str, Any]:
    """An error body for a view that returned an error status itself, without raising."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    code = phrase.lower().replace(" ", "_").replace("-", "_")
    return error_body(code, f"{phrase}.", data)
