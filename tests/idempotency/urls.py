from django.urls import path

from tests.idempotency import views
from tracing_app.idempotency.http import idempotent

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
    path("class-based/", views.ClassBased.as_view(), name="idem-class-based"),
]
