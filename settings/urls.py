from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("checkout_demo.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]

handler400 = "tracing_app.views.bad_request"
handler403 = "tracing_app.views.permission_denied"
handler404 = "tracing_app.views.page_not_found"
handler500 = "tracing_app.views.server_error"
