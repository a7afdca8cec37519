from django.apps import AppConfig


class TracingAppConfig(AppConfig):
    name = "tracing_app"
    verbose_name = "Tracing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from tracing_app import checks  # noqa: F401  (registers the system checks)
