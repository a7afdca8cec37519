"""A project's own DRF exception handlers, as projects write them, for the composition tests."""

from rest_framework.exceptions import APIException
from rest_framework.views import exception_handler


class QuotaExceeded(APIException):
    status_code = 429
    default_code = "throttled"


def wrapping(exc, context):
    """Wraps DRF's answer in a shape of its own, and answers quota errors with its own code."""
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, QuotaExceeded):
        response.data = {"code": "quota_exceeded", "message": "Slow down.", "limit": 5}
    else:
        response.data = {"ok": False, "status_code": response.status_code, "errors": response.data}
    return response
