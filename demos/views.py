from django.shortcuts import render

from . import conf


def index(request):
    return render(request, "demos/index.html")


def echo(request):
    return render(request, "demos/echo.html")


def ping(request):
    return render(request, "demos/ping.html")


def clock(request):
    return render(request, "demos/time.html", {"interval": conf.get("CLOCK_INTERVAL")})
