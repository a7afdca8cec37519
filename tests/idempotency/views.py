"""Views the idempotency tests call. Each one that really runs leaves an Effect row.

The request body says what the view does: ``{"label": ..., "outcome": ...}`` where outcome is
"created" (201), "rejected" (400), "busy" (429), "server_error" (500), "raise" (an exception after the
write), "big" (a large 201 body) or "block" (wait for the test to release it, then 201).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from rest_framework import mixins, serializers, viewsets
from rest_framework.authentication import BasicAuthentication, SessionAuthentication
from rest_framework.decorators import action, api_view, authentication_classes, permission_classes
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tests.idempotency.models import Effect
from tracing_app.context import get_correlation_id
from tracing_app.idempotency import IdempotencyOptions, IdempotentAPIViewMixin, idempotent
from tracing_app.idempotency.store import active_claim

STATUS = {"created": 201, "block": 201, "big": 201, "rejected": 400, "busy": 429, "server_error": 500}


class Gate:
    """Holds the first "block" request to enter inside its view until the test releases it; requests
    entering after it pass straight through."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()

    def hold_first(self) -> None:
        with self._lock:
            first = not self.entered.is_set()
            self.entered.set()
        if first and not self.release.wait(30):
            raise RuntimeError("the gate was never released")


GATES: dict[str, Gate] = {}


def perform(data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    label = str(data.get("label", ""))
    outcome = data.get("outcome", "created")
    effect = Effect.objects.create(label=label, note=outcome)
    if outcome == "block":
        GATES[label].hold_first()
    if outcome == "raise":
        raise RuntimeError("the view failed after writing")
    claim = active_claim()
    payload = {
        "effect": effect.pk,
        "label": label,
        "correlation_id": get_correlation_id(),
        "charge_key": claim.step_key("charge") if claim else None,
        "in_transaction": connection.in_atomic_block,
        "lock_timeout": lock_timeout(),
    }
    if outcome == "big":
        payload["padding"] = "x" * 4000
    return STATUS[outcome], payload


def lock_timeout() -> str | None:
    """The lock timeout the view's own statements get (PostgreSQL), whatever the claim waited with."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        return cursor.fetchone()[0]


def respond(request: HttpRequest) -> HttpResponse:
    status, payload = perform(json.loads(request.body or b"{}"))
    response = JsonResponse(payload, status=status)
    response["Location"] = f"/effects/{payload['effect']}/"
    response["X-Internal"] = "not in IDEMPOTENCY_REPLAY_HEADERS"
    response.set_cookie("session_hint", "must-not-be-replayed")
    return response


@csrf_exempt
@idempotent
def plain(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return JsonResponse({"in_transaction": connection.in_atomic_block})
    return respond(request)


@csrf_exempt
@idempotent(required=True)
def required(request: HttpRequest) -> HttpResponse:
    return respond(request)


@csrf_exempt
@idempotent(operation="other-space")
def own_space(request: HttpRequest) -> HttpResponse:
    return respond(request)


@csrf_exempt
@idempotent(lease=0.5, mode="lease")
def short_lease(request: HttpRequest) -> HttpResponse:
    return respond(request)


@idempotent
def form(request: HttpRequest) -> HttpResponse:
    upload = request.FILES["upload"]
    effect = Effect.objects.create(label=request.POST["label"], note=upload.read().decode())
    return JsonResponse({"effect": effect.pk}, status=201)


@csrf_exempt
@idempotent
def streamed(request: HttpRequest) -> StreamingHttpResponse:
    Effect.objects.create(label=json.loads(request.body)["label"], note="streamed")
    return StreamingHttpResponse(iter([b"part one, ", b"part two"]), status=201)


@csrf_exempt
def configured(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return JsonResponse({"in_transaction": connection.in_atomic_block})
    return respond(request)


@method_decorator([csrf_exempt, idempotent(required=True)], name="dispatch")
class ClassBased(View):
    def post(self, request: HttpRequest) -> HttpResponse:
        return respond(request)


class EffectAPIView(IdempotentAPIViewMixin, APIView):
    authentication_classes = [SessionAuthentication, BasicAuthentication]
    permission_classes = [IsAuthenticated]

    def post(self, request: Request) -> Response:
        if not request.data.get("label"):
            Effect.objects.create(label="invalid", note="written before the validation error")
            raise ValidationError({"label": ["This field is required."]})
        status, payload = perform(request.data)
        return Response(payload, status=status)


class RequiredEffectAPIView(EffectAPIView):
    idempotency = IdempotencyOptions(required=True)


@idempotent(required=True)
@api_view(["POST"])
@authentication_classes([BasicAuthentication])
@permission_classes([IsAuthenticated])
def drf_function(request: Request) -> Response:
    status, payload = perform(request.data)
    return Response(payload, status=status)


class EffectSerializer(serializers.ModelSerializer):
    class Meta:
        model = Effect
        fields = ["id", "label", "note"]


class EffectViewSet(IdempotentAPIViewMixin, viewsets.ModelViewSet):
    """Guarded by the mixin: every unsafe action, the router's and the ``@action`` ones."""

    queryset = Effect.objects.order_by("pk")
    serializer_class = EffectSerializer
    authentication_classes = [BasicAuthentication]
    permission_classes = [IsAuthenticated]

    @action(detail=True, methods=["post"])
    def copy(self, request: Request, pk: str) -> Response:
        original = self.get_object()
        made = Effect.objects.create(label=original.label, note="copy")
        return Response(EffectSerializer(made).data, status=201)


class UnguardedEffectViewSet(viewsets.ModelViewSet):
    """Guarded only where ``IDEMPOTENCY_VIEWS`` names its routes."""

    queryset = Effect.objects.order_by("pk")
    serializer_class = EffectSerializer
    authentication_classes = [BasicAuthentication]
    permission_classes = [IsAuthenticated]


class ActionGuardedViewSet(mixins.CreateModelMixin, viewsets.GenericViewSet):
    """No mixin: the decorator on each action guards it."""

    queryset = Effect.objects.order_by("pk")
    serializer_class = EffectSerializer
    authentication_classes = [BasicAuthentication]
    permission_classes = [IsAuthenticated]

    @idempotent(required=True)
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().create(request, *args, **kwargs)

    @action(detail=False, methods=["post"])
    @idempotent(operation="effects.batch")
    def batch(self, request: Request) -> Response:
        labels = request.data.get("labels") or []
        if not labels:
            raise ValidationError({"labels": ["At least one label."]})
        made = [Effect.objects.create(label=label, note="batch") for label in labels]
        return Response(EffectSerializer(made, many=True).data, status=201)


class OpenEffectViewSet(IdempotentAPIViewMixin, viewsets.ModelViewSet):
    """Anyone may write: the system check warns (W408) unless IDEMPOTENCY_SCOPE tells clients apart."""

    queryset = Effect.objects.order_by("pk")
    serializer_class = EffectSerializer
    permission_classes = [AllowAny]


async def asynchronous(request: HttpRequest) -> HttpResponse:
    return HttpResponse("never guarded")
