from django.apps import AppConfig


class TracingAppConfig(AppConfig):
    name = "tracing_app"
    verbose_name = "Tracing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from tracing_app.checks import register_all
        from tracing_app.conf import app_settings
        from tracing_app.traces import wiring

        register_all()
        wiring.connect()

        if app_settings.OTEL_ENABLED:
            from tracing_app import otel

            otel.enable()
