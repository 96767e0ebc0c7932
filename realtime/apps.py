from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "realtime"
    verbose_name = "WebSockets"

    def ready(self):
        from .channels import revocation  # noqa: F401  (a logout ends that session's sockets)
