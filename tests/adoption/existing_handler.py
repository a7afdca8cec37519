"""The adopting project's own DRF exception handler (copied in as ``proj/api.py``), written before it
met tracing_app: it wraps DRF's answer in a shape of its own."""

from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    response = drf_exception_handler(exc, context)
    if response is not None:
        response.data = {"ok": False, "status_code": response.status_code, "errors": response.data}
    return response
