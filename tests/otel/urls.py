"""Views for the OpenTelemetry tests: what a request sees of its trace, outgoing calls, task publishing,
and a W3C Trace Context test service."""

import json
import logging

import httpx
import requests
from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from opentelemetry import baggage

from tracing_app import get_correlation_id, otel
from tracing_app.context import current

logger = logging.getLogger("tests.otel")


def _seen() -> dict:
    ctx = current()
    return {
        "correlation_id": get_correlation_id(),
        "baggage": baggage.get_baggage(otel.BAGGAGE_KEY),
        "all_baggage": dict(baggage.get_all()),
        "traceparent": otel.current_traceparent(),
        "sampled": None if ctx is None else ctx.sampled,
    }


def echo(request):
    logger.info("otel echo view")
    return JsonResponse(_seen())


async def async_echo(request):
    logger.info("otel async echo view")
    return JsonResponse(_seen())


def call_out(request):
    """Calls the URL in ?url= with requests and with httpx (sync and async)."""
    url = request.GET["url"]
    requests.get(url, timeout=5)
    with httpx.Client(timeout=5) as client:
        client.get(url)
    return JsonResponse(_seen())


async def async_call_out(request):
    url = request.GET["url"]
    async with httpx.AsyncClient(timeout=5) as client:
        await client.get(url)
    return JsonResponse(_seen())


def publish(request):
    from tests.otel.tasks import parent

    result = parent.apply_async()
    return JsonResponse({**_seen(), "task_id": result.id})


@csrf_exempt
def w3c_service(request, client):
    """The W3C test service: the body lists ``{"url", "arguments"}``; POST each ``arguments`` to its ``url``
    with ``requests`` or ``httpx``."""
    for call in json.loads(request.body or b"[]"):
        if client == "requests":
            requests.post(call["url"], json=call["arguments"], timeout=5)
        else:
            with httpx.Client(timeout=5) as http_client:
                http_client.post(call["url"], json=call["arguments"])
    return HttpResponse(status=204)


@csrf_exempt
async def async_w3c_service(request):
    async with httpx.AsyncClient(timeout=5) as http_client:
        for call in json.loads(request.body or b"[]"):
            await http_client.post(call["url"], json=call["arguments"])
    return HttpResponse(status=204)


urlpatterns = [
    path("otel/echo/", echo),
    path("otel/async-echo/", async_echo),
    path("otel/call/", call_out),
    path("otel/async-call/", async_call_out),
    path("otel/publish/", publish),
    path("otel/w3c/<str:client>/", w3c_service),
    path("otel/w3c-async/", async_w3c_service),
]
