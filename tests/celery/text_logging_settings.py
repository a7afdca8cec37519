"""The test settings with a project's text LOGGING (no JSON anywhere): a worker must then write text."""

from tests.project.settings import *  # noqa: F403

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"correlation": {"()": "tracing_app.logs.CorrelationIdFilter"}},
    "formatters": {"text": {"format": "%(levelname)s %(name)s [%(correlation_id)s] %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["correlation"], "formatter": "text"}
    },
    "root": {"handlers": ["console"], "level": "INFO"},
}
