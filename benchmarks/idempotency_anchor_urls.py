"""The idempotency section's URLs in its in-process worker: tracing_app's, and the same view under each
idempotency library that is installed (see :mod:`benchmarks.idempotency_settings`)."""

from django.conf import settings
from django.urls import path

from benchmarks.idempotency_urls import urlpatterns as tracing_app_urlpatterns
from benchmarks.idempotency_views import create_order

urlpatterns = list(tracing_app_urlpatterns)

if settings.ANCHORS["django-idempotency-key"]:
    from idempotency_key.decorators import idempotency_key

    urlpatterns.append(path("idempotency-key-orders/", idempotency_key(create_order)))

if settings.ANCHORS["drf-idempotency"]:
    from drf_idempotency.decorators import idempotent as drf_idempotent

    urlpatterns.append(path("drf-idempotency-orders/", drf_idempotent()(create_order)))
