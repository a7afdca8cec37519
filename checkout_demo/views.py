"""The order API. Every response is in the envelope (``tracing_app.rest``)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.decorators import api_view
from rest_framework.exceptions import APIException
from rest_framework.fields import BooleanField
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from checkout_demo import saga, tasks
from checkout_demo.conf import demo_settings
from checkout_demo.models import Order, Product
from checkout_demo.openapi import error_response
from checkout_demo.parsers import BoundedJSONParser
from checkout_demo.serializers import (
    CheckoutSerializer,
    OrderCreateSerializer,
    OrderSerializer,
    ProductSerializer,
)
from tracing_app.idempotency import IdempotencyOptions, IdempotentAPIViewMixin
from tracing_app.traces import annotate


@extend_schema(summary="Liveness probe", responses=inline_serializer("Pong", {"pong": BooleanField()}))
@api_view(["GET"])
def ping(request: Request) -> Response:
    """A liveness probe that shows the envelope: ``{"data": {"pong": true}, "meta": {...}}``."""
    return Response({"pong": True})


class CheckoutConflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "checkout_not_allowed"
    default_detail = "Checkout can only start once, for a pending order."


class OrderPagination(PageNumberPagination):
    page_size_query_param = "page_size"

    def get_page_size(self, request: Request) -> int:
        conf = demo_settings()
        self.page_size = conf["PAGE_SIZE"]
        self.max_page_size = conf["MAX_PAGE_SIZE"]
        return super().get_page_size(request)


def orders(customer: Any) -> QuerySet[Order]:
    """The orders ``customer`` placed: nobody reads another customer's orders through the API."""
    return (
        Order.objects.filter(customer=customer)
        .select_related("payment", "shipment")
        .prefetch_related("lines__product")
    )


class CustomerView:
    """Orders belong to a customer: requests authenticate with the customer's API token
    (``Authorization: Token <key>``) or a logged-in session."""

    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]


class ProductList(generics.ListAPIView):
    """The catalogue with current stock."""

    queryset = Product.objects.all()
    serializer_class = ProductSerializer
    pagination_class = None


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=True,
    description=(
        "A unique key per order the client means to place (e.g. a UUID). Sending the same request again "
        "with the same key returns the first response (header Idempotent-Replayed: true) instead of a "
        "second order."
    ),
)


IDEMPOTENT_REPLAYED = OpenApiParameter(
    "Idempotent-Replayed",
    str,
    OpenApiParameter.HEADER,
    response=[201],
    description='"true" when this is the stored response of an earlier request with the same key.',
)


class OrderListCreate(IdempotentAPIViewMixin, CustomerView, generics.ListCreateAPIView):
    """GET lists orders; POST creates one, once per Idempotency-Key (repeats replay the first answer)."""

    idempotency = IdempotencyOptions(required=True)
    parser_classes = [BoundedJSONParser]
    pagination_class = OrderPagination
    serializer_class = OrderSerializer

    def get_queryset(self) -> QuerySet[Order]:
        return orders(self.request.user)

    @extend_schema(summary="List your orders, newest first (paginated)")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Create an order",
        parameters=[IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED],
        request=OrderCreateSerializer,
        responses={
            201: OrderSerializer,
            400: error_response("Invalid input, malformed JSON, or a missing/malformed Idempotency-Key."),
            409: error_response("A request with this Idempotency-Key is still in progress."),
            413: error_response("The body is over the size limit."),
            415: error_response("The body is not JSON."),
            422: error_response("This Idempotency-Key was used with a different request."),
        },
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        incoming = OrderCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        order = orders(request.user).get(pk=incoming.save(customer=request.user).pk)
        annotate(order_id=order.pk)
        location = reverse("checkout_demo:order-detail", args=[order.pk])
        return Response(
            OrderSerializer(order).data, status=status.HTTP_201_CREATED, headers={"Location": location}
        )


class OrderDetail(CustomerView, generics.RetrieveAPIView):
    serializer_class = OrderSerializer

    def get_queryset(self) -> QuerySet[Order]:
        return orders(self.request.user)

    @extend_schema(summary="One of your orders: status, correlation ID, lines, payment, shipment, failure")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class OrderCheckout(CustomerView, APIView):
    parser_classes = [BoundedJSONParser]

    @extend_schema(
        summary="Start checkout: reserve stock, charge, confirm (asynchronously)",
        description=(
            "Returns 202 at once with the order in `processing`; poll the order for `confirmed` or "
            "`failed`. The workflow runs under the order's correlation ID; send it back as "
            "X-Correlation-ID to keep this request in the same trace."
        ),
        request=CheckoutSerializer,
        responses={
            202: OrderSerializer,
            400: error_response("Invalid input or malformed JSON."),
            404: error_response("No such order."),
            409: error_response("Checkout already started for this order."),
            413: error_response("The body is over the size limit."),
            415: error_response("The body is not JSON."),
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        order = get_object_or_404(orders(request.user), pk=pk)
        annotate(order_id=order.pk)
        incoming = CheckoutSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        try:
            saga.start_checkout(
                order.pk, incoming.validated_data["payment_method"], publish=tasks.publish_checkout
            )
        except saga.CheckoutNotAllowed as exc:
            raise CheckoutConflict(f"Checkout already started; the order is {exc.status}.") from exc
        return Response(
            OrderSerializer(orders(request.user).get(pk=order.pk)).data, status=status.HTTP_202_ACCEPTED
        )
