from django.shortcuts import render


def index(request):
    return render(request, "demos/index.html")


def echo(request):
    return render(request, "demos/echo.html")


def ping(request):
    return render(request, "demos/ping.html")
