from django.conf import settings
from django.shortcuts import render


def index(request):
    return render(request, "demos/index.html")


def echo(request):
    return render(request, "demos/echo.html")


def ping(request):
    return render(request, "demos/ping.html")


def clock(request):
    return render(request, "demos/time.html", {"interval": settings.CLOCK_INTERVAL})
