from django.urls import path

from tests.taskapp import views

urlpatterns = [path("start/", views.start_everything)]
