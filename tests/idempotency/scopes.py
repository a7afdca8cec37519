"""An ``IDEMPOTENCY_SCOPE`` function for the tests: the API client named by a header."""

from django.http import HttpRequest


def api_client(request: HttpRequest) -> str:
    return request.META.get("HTTP_X_API_CLIENT", "unknown")
