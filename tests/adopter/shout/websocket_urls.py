from django.urls import path

from .sockets import shout

urlpatterns = [
    path("", shout, name="shout"),
]
