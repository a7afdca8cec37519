"""Views for the spine's tests: plain and async Django views, DRF views of each shape."""

import asyncio
import logging

from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpResponse, JsonResponse
from django.urls import path
from rest_framework import generics, serializers, status
from rest_framework.decorators import api_view
from rest_framework.exceptions import NotFound
from rest_framework.pagination import PageNumberPagination
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from tests.core.handlers import QuotaExceeded
from tracing_app import get_correlation_id
from tracing_app.rest import EnvelopeJSONRenderer

logger = logging.getLogger("tests.core")


def plain(request):
    logger.info("plain view")
    return JsonResponse({"correlation_id": get_correlation_id()})


async def async_echo(request):
    await asyncio.sleep(0)
    seen = get_correlation_id()
    await asyncio.sleep(0.01)
    return JsonResponse({"before": seen, "after": get_correlation_id()})


def boom(request):
    raise RuntimeError("boom")


def forbidden(request):
    raise PermissionDenied


def suspicious(request):
    raise SuspiciousOperation("bad")


def reads_body(request):
    return HttpResponse(len(request.body))


def touches_session(request):
    request.session["seen"] = True
    return HttpResponse("ok")


class OrderSerializer(serializers.Serializer):
    quantity = serializers.IntegerField(min_value=1)
    sku = serializers.CharField(max_length=10)


@api_view(["GET", "POST"])
def api_order(request):
    if request.method == "POST":
        serializer = OrderSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(serializer.validated_data, status=status.HTTP_201_CREATED)
    return Response({"sku": "A1", "quantity": 2})


@api_view(["GET"])
def api_missing(request):
    raise NotFound("No such order.")


@api_view(["GET"])
def api_boom(request):
    raise RuntimeError("api boom")


@api_view(["DELETE"])
def api_delete(request):
    return Response(status=status.HTTP_204_NO_CONTENT)


@api_view(["GET"])
def api_manual_error(request):
    return Response({"reason": "quota"}, status=status.HTTP_429_TOO_MANY_REQUESTS)


@api_view(["GET"])
def api_django_404(request):
    raise Http404("No such thing.")


@api_view(["GET"])
def api_quota(request):
    raise QuotaExceeded("Too many orders today.")


class BrowsableOrder(APIView):
    """The renderer set the README gives: the envelope, and the browsable API for browsers."""

    renderer_classes = [EnvelopeJSONRenderer, BrowsableAPIRenderer]

    def get(self, request):
        return Response({"sku": "A1", "quantity": 2})


class Pages(PageNumberPagination):
    page_size = 2


class NumbersView(generics.ListAPIView):
    pagination_class = Pages

    def get_queryset(self):
        return [{"n": n} for n in range(5)]

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(page)


class RawView(APIView):
    envelope = False

    def get(self, request):
        return Response({"raw": True})


urlpatterns = [
    path("plain/", plain),
    path("async/", async_echo),
    path("boom/", boom),
    path("forbidden/", forbidden),
    path("suspicious/", suspicious),
    path("session/", touches_session),
    path("body/", reads_body),
    path("api/order/", api_order),
    path("api/missing/", api_missing),
    path("api/boom/", api_boom),
    path("api/delete/", api_delete),
    path("api/manual-error/", api_manual_error),
    path("api/numbers/", NumbersView.as_view()),
    path("api/raw/", RawView.as_view()),
    path("api/quota/", api_quota),
    path("api/django-404/", api_django_404),
    path("api/browsable/", BrowsableOrder.as_view()),
]

handler400 = "tracing_app.views.bad_request"
handler403 = "tracing_app.views.permission_denied"
handler404 = "tracing_app.views.page_not_found"
handler500 = "tracing_app.views.server_error"
