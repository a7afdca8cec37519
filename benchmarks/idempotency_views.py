"""The idempotency section's views: one trivial POST view, bare and guarded by ``@idempotent``.

The view writes nothing, so the difference between the two is the idempotency layer's own work: the
claim, the transaction around the view and the stored response.
"""

import json

from django.http import HttpRequest, JsonResponse

from tracing_app.idempotency.http import idempotent


def create_order(request: HttpRequest) -> JsonResponse:
    if request.method != "POST":
        return JsonResponse({"detail": "POST only"}, status=405)
    order = json.loads(request.body or b"{}")
    return JsonResponse({"order": order, "status": "created"}, status=201)


idempotent_create_order = idempotent(create_order)
