"""WEBSOCKET_URLCONF: the routes the websocket worker serves (reverse them with {% websocket_url %}).

Each app keeps its own routes, included here as project/urls.py includes its pages.
"""

from django.urls import include, path

urlpatterns = [
    path("", include("demos.websocket_urls")),
    path("jobs/", include("jobs.websocket_urls")),
    path("chat/", include("chat.websocket_urls")),
]
