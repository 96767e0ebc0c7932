from django.urls import include, path

from realtime.channels import channel_socket, include_topics

topicpatterns = [
    include_topics("shout.channels"),
]

urlpatterns = [
    path("socket/", channel_socket, name="socket"),
    path("shout/", include("shout.websocket_urls")),
]
