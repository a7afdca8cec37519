from django.urls import path

from checkout_demo import views

urlpatterns = [
    path("ping/", views.ping, name="ping"),
]
