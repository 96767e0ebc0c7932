from django.urls import path, re_path

from . import views
from .models import ROOM_NAME_PATTERN

app_name = "chat"
urlpatterns = [
    path("", views.room, name="lobby"),
    re_path(rf"^(?P<room>{ROOM_NAME_PATTERN})/$", views.room, name="room"),
]
