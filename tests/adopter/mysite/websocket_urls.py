from django.urls import include, path

urlpatterns = [
    path("shout/", include("shout.websocket_urls")),
]
