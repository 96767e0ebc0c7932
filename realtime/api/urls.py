"""The server API's routes (docs/api.md): `path("realtime/api/", include("realtime.api.urls"))`."""

from django.urls import path

from . import views

urlpatterns = [
    path(name, getattr(views, name), name=f"realtime-api-{name}")
    for name in ("publish", "notify", "broadcast", "presence", "history", "disconnect")
]
