from django.urls import path
from rest_framework.routers import SimpleRouter

from tests.idempotency import views
from tracing_app.idempotency import idempotent

router = SimpleRouter()
router.register("effects", views.EffectViewSet, basename="effect")
router.register("unguarded-effects", views.UnguardedEffectViewSet, basename="unguarded-effect")
router.register("action-effects", views.ActionGuardedViewSet, basename="action-effect")

urlpatterns = [
    path("plain/", views.plain, name="idem-plain"),
    path("plain-too/", views.plain, name="idem-plain-too"),
    path("required/", views.required, name="idem-required"),
    path("own-space/", views.own_space, name="idem-own-space"),
    path("short-lease/", views.short_lease, name="idem-short-lease"),
    path("form/", views.form, name="idem-form"),
    path("streamed/", views.streamed, name="idem-streamed"),
    path("configured/", views.configured, name="idem-configured"),
    path("api/effects/", views.EffectAPIView.as_view(), name="idem-api"),
    path("api/required/", views.RequiredEffectAPIView.as_view(), name="idem-api-required"),
    path("api/function/", views.drf_function, name="idem-api-function"),
    path(
        "api/rewrapped/", idempotent(views.EffectAPIView.as_view(), required=True), name="idem-api-rewrapped"
    ),
    path(
        "api/wrapped-viewset/",
        idempotent(views.UnguardedEffectViewSet.as_view({"post": "create"}), required=True),
        name="idem-wrapped-viewset",
    ),
    path("class-based/", views.ClassBased.as_view(), name="idem-class-based"),
    *router.urls,
]
