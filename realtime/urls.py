"""The layer's page routes (the page server's ROOT_URLCONF includes them: `path("realtime/", include("realtime.urls"))`)."""

from django.urls import path

from .channels import views

urlpatterns = [
    path("token/", views.token, name="realtime-token"),
]
