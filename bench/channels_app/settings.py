"""Settings of the minimal Django Channels project the benchmark compares us with.

Environment: REDIS_URL, CHANNELS_DB (SQLite file), CHANNEL_LAYER ("core": channels_redis'
RedisChannelLayer, the one its docs recommend; "pubsub": its RedisPubSubChannelLayer).
Both layers keep their default options: what a Django user gets out of the box.
"""

import os

DEBUG = False
SECRET_KEY = "benchmark-only"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["channels", "channels_app"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ.get("CHANNELS_DB", "channels.sqlite3"),
                         "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"}}}

LAYERS = {
    "core": "channels_redis.core.RedisChannelLayer",
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
}
CHANNEL_LAYERS = {"default": {
    "BACKEND": LAYERS[os.environ.get("CHANNEL_LAYER", "core")],
    "CONFIG": {"hosts": [os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")]},
}}
LOGGING = {"version": 1, "disable_existing_loggers": False,
           "handlers": {"console": {"class": "logging.StreamHandler"}},
           "root": {"handlers": ["console"], "level": "WARNING"}}
