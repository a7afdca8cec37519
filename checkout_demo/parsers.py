"""A JSON parser that refuses oversized bodies before reading them whole."""

from __future__ import annotations

import io
from typing import Any

from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.parsers import JSONParser

from checkout_demo.conf import demo_settings


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"
    default_detail = "The request body is too large."


class BoundedJSONParser(JSONParser):
    """JSON only, at most ``CHECKOUT_DEMO["MAX_BODY_BYTES"]``.

    The declared Content-Length is checked first; a body without one (chunked) is read up to the limit
    plus one byte, so an endless stream is cut off instead of filling memory.
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        limit = demo_settings()["MAX_BODY_BYTES"]
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"The request body is {int(declared)} bytes; the limit is {limit} bytes.")
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise PayloadTooLarge(f"The request body is over the limit of {limit} bytes.")
        return super().parse(io.BytesIO(body), media_type, parser_context)
