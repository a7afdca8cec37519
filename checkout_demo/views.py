from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response


@api_view(["GET"])
def ping(request: Request) -> Response:
    """A liveness probe that shows the envelope: ``{"data": {"pong": true}, "meta": {...}}``."""
    return Response({"pong": True})
