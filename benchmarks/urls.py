from django.urls import path

from benchmarks.views import DrfView, plain_view

# Paths are named after edge_configs.VIEWS.
urlpatterns = [
    path("plain/", plain_view),
    path("drf/", DrfView.as_view()),
]
