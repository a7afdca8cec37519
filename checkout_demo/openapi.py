"""OpenAPI (drf-spectacular) that describes responses as they are sent: inside the envelope.

``EnvelopeAutoSchema`` wraps every 2xx response schema in ``{"data": <schema>, "meta": EnvelopeMeta}``
gives every operation a ``default`` response with the error envelope and documents the correlation
header on every response, so generated clients see the
real shapes. Views with ``envelope = False`` keep their plain schemas. Enable it with
``REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] = "checkout_demo.openapi.EnvelopeAutoSchema"``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from tracing_app.conf import app_settings


class EnvelopeMetaSerializer(serializers.Serializer):
    correlation_id = serializers.CharField(
        allow_null=True,
        help_text="The transaction's correlation ID; also sent as the X-Correlation-ID header.",
    )


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField(
        help_text="Stable, machine-readable, e.g. invalid, not_found, payload_too_large."
    )
    message = serializers.CharField(help_text="For humans.")
    details = serializers.JSONField(
        allow_null=True, help_text="Field errors for invalid input (the shape of the request), else null."
    )


class ErrorEnvelopeSerializer(serializers.Serializer):
    error = ErrorBodySerializer()
    meta = EnvelopeMetaSerializer()


def error_response(description: str) -> OpenApiResponse:
    """An error response for ``extend_schema(responses=...)``, documented with the error envelope."""
    return OpenApiResponse(ErrorEnvelopeSerializer, description=description)


class EnvelopeAutoSchema(AutoSchema):
    def _enveloped(self) -> bool:
        return getattr(self.view, "envelope", True)

    def _get_response_for_code(
        self, serializer: Any, status_code: str, media_types: Any = None, direction: str = "response"
    ) -> dict[str, Any]:
        response = super()._get_response_for_code(serializer, status_code, media_types, direction)
        response.setdefault("headers", {})[app_settings.HEADER] = {
            "schema": {"type": "string"},
            "description": "The transaction's correlation ID; the same as meta.correlation_id.",
        }
        if not (self._enveloped() and str(status_code).startswith("2") and "content" in response):
            return response
        meta = self.resolve_serializer(EnvelopeMetaSerializer, "response").ref
        for media in response["content"].values():
            media["schema"] = {
                "type": "object",
                "properties": {"data": media["schema"], "meta": meta},
                "required": ["data", "meta"],
            }
        return response

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        if self._enveloped() and "default" not in responses:
            responses["default"] = self._get_response_for_code(
                error_response("Any error, in the error envelope."), "default", direction=direction
            )
        return responses
