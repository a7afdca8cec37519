"""The library tests' root URLconf: the admin (with its trace pages) and tracing_app's error pages."""

from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]

handler400 = "tracing_app.views.bad_request"
handler403 = "tracing_app.views.permission_denied"
handler404 = "tracing_app.views.page_not_found"
handler500 = "tracing_app.views.server_error"
