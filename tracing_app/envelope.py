"""The response envelope's building blocks, shared by the DRF renderer, error views and idempotency.

Kept free of DRF so plain Django views (error pages, idempotency errors) answer in the same shape.
"""

from __future__ import annotations

from typing import Any

from tracing_app.context import get_correlation_id


class ErrorPayload(dict):
    """``{"error": {...}}`` awaiting its ``meta``: the renderer recognises it by type, not by shape."""


def meta() -> dict[str, Any]:
    """The ``meta`` block: the current correlation ID (None outside a transaction)."""
    return {"correlation_id": get_correlation_id()}


def error_payload(code: str, message: str, details: Any = None) -> ErrorPayload:
    """The ``error`` part alone, for a renderer to complete with ``meta``."""
    return ErrorPayload(error={"code": code, "message": message, "details": details})


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """A complete error envelope: ``{"error": {"code", "message", "details"}, "meta": {...}}``."""
    return {**error_payload(code, message, details), "meta": meta()}
