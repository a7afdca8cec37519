"""Views of the trace tests, next to the admin (the trace pages live there)."""

from __future__ import annotations

import logging

from django.contrib import admin
from django.contrib.auth.models import User
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from tracing_app import get_correlation_id

logger = logging.getLogger("tests.traces")


def ok(request: HttpRequest, order_id: str = "") -> JsonResponse:
    return JsonResponse({"correlation_id": get_correlation_id()})


def warns(request: HttpRequest) -> JsonResponse:
    logger.warning("stock for %s is low", request.GET.get("sku", "?"))
    logger.info("below the handler's level: not stored")
    return JsonResponse({"correlation_id": get_correlation_id()})


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("the gateway answered 502")


def rolled_back(request: HttpRequest) -> HttpResponse:
    with transaction.atomic():
        User.objects.create(username="ghost-of-a-rolled-back-request")
        logger.error("inventory row locked; giving up")
        raise LookupError("order 42 vanished mid-checkout")


def server_error(request: HttpRequest) -> HttpResponse:
    return HttpResponse("upstream down", status=503)


def checkout(request: HttpRequest) -> JsonResponse:
    """The end-to-end fan-out: one task retries once then starts a child, one fails."""
    from tests.traces import tasks

    order_id = request.GET["order"]
    tasks.reserve_stock.delay(order_id=order_id, note=request.GET.get("note", ""))
    tasks.charge_card.delay(order_id=order_id)
    logger.warning("order %s waits on the payment provider", order_id)
    return JsonResponse({"correlation_id": get_correlation_id()})


urlpatterns = [
    path("admin/", admin.site.urls),
    path("ok/", ok, name="ok"),
    path("orders/<str:order_id>/", ok, name="order"),
    path("warns/", warns),
    path("boom/", boom, name="boom"),
    path("rolled-back/", rolled_back),
    path("server-error/", server_error),
    path("checkout/", checkout, name="checkout"),
]
