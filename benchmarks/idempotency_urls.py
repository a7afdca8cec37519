from django.urls import path

from benchmarks.idempotency_views import create_order, idempotent_create_order, lease_create_order

urlpatterns = [
    path("orders/", create_order),
    path("idempotent-orders/", idempotent_create_order),
    path("lease-orders/", lease_create_order),
]
