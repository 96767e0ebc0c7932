"""Settings, read from the environment with safe defaults.

Every variable is listed in docs/settings.md. DEBUG is off unless asked for;
with DEBUG off the project refuses to start without SECRET_KEY and ALLOWED_HOSTS.
"""

import os
from importlib.util import find_spec
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

# Each registers its settings with realtime.conf, whose from_environ() below reads them all.
import chat.conf  # noqa: F401
import demos.conf  # noqa: F401
import jobs.conf  # noqa: F401
import realtime.api.conf  # noqa: F401
import realtime.conf

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def env_list(name, default=""):
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (set DEBUG=1 for development).")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
if not ALLOWED_HOSTS and not DEBUG:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG is off (comma-separated host names).")

CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "realtime",
    "realtime.api",  # the server API (docs/api.md): optional
    "demos",
    "chat",
    # Before django_tasks_db: its `db_worker` command is jobs' subclass (jobs/management/commands/).
    "jobs",
    # The Tasks framework: Django's own (django.tasks) from 6.0, the django-tasks backport before.
    *([] if find_spec("django.tasks") else ["django_tasks"]),
    "django_tasks_db",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
# A WebSocket view needs the session and the user; the rest of MIDDLEWARE shapes pages' responses.
WEBSOCKET_MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Page server, websocket workers and management commands write to one file:
    # take the write lock up front and wait for it rather than fail with "database is locked".
    # WAL lets readers run beside the writer, and commits skip the fsync (a websocket worker's
    # event loop waits for every SQLite call); use PostgreSQL in production (docs/deployment.md).
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE",
                                       "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    # Tests start real worker processes that must see the test database: keep it in a file.
    DATABASES["default"]["TEST"] = {"NAME": os.environ.get("TEST_DATABASE_NAME", str(BASE_DIR / "test-db.sqlite3"))}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
# The site's own files (site.css, beside templates/); each app keeps its own in <app>/static/.
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGIN_REDIRECT_URL = "/chat/"
LOGOUT_REDIRECT_URL = "/chat/"

# TLS ends at nginx, which says so in X-Forwarded-Proto: pages and the websocket
# template tag then know the request was https (and give wss:// URLs).
# nginx must set that header itself (deploy/nginx.conf does), or a client could claim https.
# With TLS, session and CSRF cookies never travel over plain http.
if env_bool("BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True

# --- Settings of the WebSocket layer and of the applications: each has its default in its module's
# registry (realtime/conf.py, chat/conf.py, demos/conf.py, jobs/conf.py; docs/settings.md lists
# them), and any of them may be set from the environment variable of its name.
# The websocket worker realtime.testing starts is the one production runs (deploy/gunicorn_ws.py).
WEBSOCKET_WORKER_APP = "project.wsgi:websocket"
WEBSOCKET_WORKER_CONFIG = str(BASE_DIR / "deploy" / "gunicorn_ws.py")
globals().update(realtime.conf.from_environ())

# Jobs are tasks of Django's Tasks framework, stored in the database and run by `manage.py db_worker`
# (docs/architecture.md, Background jobs).
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
# Tasks the task worker keeps scheduled, each this many seconds after its last run (jobs/periodic.py).
PERIODIC_TASKS = {"chat.tasks.prune_messages": 600}

TEST_RUNNER = "project.test_runner.SummaryRunner"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s pid=%(process)d %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # websockets' sans-I/O core logs every closed connection at INFO.
        "websockets": {"level": "WARNING"},
        # Django's own console handler would print each line twice.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
