from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("checkout_demo.urls")),
]

handler400 = "tracing_app.views.bad_request"
handler403 = "tracing_app.views.permission_denied"
handler404 = "tracing_app.views.page_not_found"
handler500 = "tracing_app.views.server_error"
