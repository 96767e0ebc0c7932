from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "realtime.api"
    label = "realtime_api"
    verbose_name = "WebSockets: server API"
    default_auto_field = "django.db.models.BigAutoField"
