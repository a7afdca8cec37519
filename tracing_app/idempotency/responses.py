"""What the idempotency layer answers instead of running a view, and what it stores of a response."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse

from tracing_app.conf import app_settings
from tracing_app.context import current, get_correlation_id
from tracing_app.envelope import error_body
from tracing_app.idempotency import store
from tracing_app.sampling import is_sampled

REPLAYED_HEADER = "Idempotent-Replayed"


def stored_outcome(response: HttpResponseBase) -> dict[str, Any]:
    """What is stored of ``response``: status, the replayable headers, and the body unless too large."""
    allowed = {name.lower() for name in app_settings.IDEMPOTENCY_REPLAY_HEADERS} - {"set-cookie"}
    headers = [(name, value) for name, value in response.items() if name.lower() in allowed]
    if response.streaming:
        return {"status": response.status_code, "headers": headers, "body": None, "size": None}
    body = response.content  # type: ignore[attr-defined]
    kept = body if len(body) <= app_settings.IDEMPOTENCY_MAX_RESPONSE_BYTES else None
    return {"status": response.status_code, "headers": headers, "body": kept, "size": len(body)}


def replay(request: HttpRequest, record: Any) -> HttpResponseBase:
    """The stored response of a completed request, or a 409 when it was not kept."""
    if record.response_body is None:
        size = "streamed" if record.response_size is None else f"{record.response_size} bytes"
        return error_response(
            409,
            "idempotency_response_not_stored",
            f"The request with this {app_settings.IDEMPOTENCY_HEADER} already completed with status "
            f"{record.response_status}, but its response ({size}) was not kept for replay. It will not "
            "run again; look the result up instead of retrying.",
            {"status": record.response_status, "correlation_id": record.correlation_id or None},
        )
    response = HttpResponse(bytes(record.response_body), status=record.response_status)
    del response["Content-Type"]
    for name, value in record.response_headers:
        response[name] = value
    response[REPLAYED_HEADER] = "true"
    retry_correlation_id = get_correlation_id()
    if record.correlation_id:
        _join_original_transaction(request, response, record.correlation_id)
    store.record_replay(record, retry_correlation_id=retry_correlation_id)
    return response


def _join_original_transaction(request: HttpRequest, response: HttpResponse, correlation_id: str) -> None:
    """A replay is a retry of the first request, so it joins that transaction: the correlation ID it
    answers with (header, logs from here on, events) is the first attempt's; its hop ID stays its own."""
    ctx = current()
    if ctx is not None:
        ctx.correlation_id = correlation_id
        ctx.sampled = is_sampled(correlation_id)
    request.correlation_id = correlation_id  # type: ignore[attr-defined]
    response[app_settings.HEADER] = correlation_id


def in_flight(retry_after: int) -> HttpResponse:
    """409 for a key whose first request is still running."""
    response = error_response(
        409,
        "idempotency_request_in_progress",
        f"A request with this {app_settings.IDEMPOTENCY_HEADER} is still being processed. Retry after "
        f"{retry_after} s to get its response.",
        {"retry_after": retry_after},
    )
    response["Retry-After"] = str(retry_after)
    return response


def error_response(status: int, code: str, message: str, details: Any = None) -> HttpResponse:
    """An error answered instead of running the view, in the API's error body."""
    return JsonResponse(error_body(code, message, details), status=status)
