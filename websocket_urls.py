"""WEBSOCKET_URLCONF: the routes the websocket worker serves (reverse them with {% websocket_url %}),
and the topics of its one socket of many topics, `/socket/` (docs/protocol.md, Channels).

Each app keeps its own routes and topics, included here as project/urls.py includes its pages.
"""

from django.urls import include, path

from realtime.channels import channel_socket, include_topics

topicpatterns = [
    include_topics("chat.channels"),
    include_topics("jobs.channels"),
    include_topics("demos.channels"),
]

urlpatterns = [
    path("socket/", channel_socket, name="socket"),
    path("", include("demos.websocket_urls")),
    path("jobs/", include("jobs.websocket_urls")),
    path("chat/", include("chat.websocket_urls")),
]
