"""A URLconf for the system-check tests: a router, an anonymous guarded ViewSet and an async view."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from tests.idempotency import views

router = SimpleRouter()
router.register("effects", views.UnguardedEffectViewSet, basename="effect")
router.register("open-effects", views.OpenEffectViewSet, basename="open-effect")

urlpatterns = [
    path("async/", views.asynchronous, name="idem-async"),
    *router.urls,
]
