from importlib.util import find_spec

from django.apps import AppConfig


class TracingAppConfig(AppConfig):
    name = "tracing_app"
    verbose_name = "Tracing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from tracing_app import checks  # noqa: F401  (registers the system checks)
        from tracing_app.idempotency import checks as idempotency_checks  # noqa: F401  (its checks)
        from tracing_app.outbox import checks as outbox_checks  # noqa: F401  (its checks)
        from tracing_app.traces import wiring

        wiring.connect()

        if find_spec("celery") is not None:
            from tracing_app import celery  # noqa: F401  (registers the Celery wiring check)

        from tracing_app.conf import app_settings

        if app_settings.OTEL_ENABLED:
            from tracing_app import otel

            otel.enable()
