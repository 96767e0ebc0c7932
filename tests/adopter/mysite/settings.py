"""An ordinary project's settings, plus what docs/adopting.md adds for WebSockets."""

from pathlib import Path

import realtime.conf

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "adopter-test-only"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "realtime",  # the WebSocket layer: template tags, the static browser client
    "shout",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "mysite.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}}
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
STATIC_URL = "/static/"
USE_TZ = True

WEBSOCKET_URLCONF = "mysite.websocket_urls"
globals().update(realtime.conf.from_environ())  # REDIS_URL and the layer's other settings, from the environment
