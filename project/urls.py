from django.contrib import admin
from django.urls import include, path

from demos import views as demos

from . import views

urlpatterns = [
    path("", demos.index, name="index"),
    path("echo/", demos.echo, name="echo"),
    path("ping/", demos.ping, name="ping"),
    path("time/", demos.clock, name="time"),
    path("chat/", include("chat.urls")),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("jobs/", include("jobs.urls")),
    path("realtime/api/", include("realtime.api.urls")),  # the server API: docs/api.md
    path("realtime/", include("realtime.urls")),  # POST /realtime/token/: a token for an app or a script
    path("admin/", admin.site.urls),
]
