"""Settings for the W3C test service run as a process of its own (gunicorn, uvicorn): the test settings
with OpenTelemetry on, spans exported nowhere, and the OpenTelemetry test views as the URLconf."""

import os

os.environ.setdefault("OTEL_TRACES_EXPORTER", "none")

from tests.project.settings import *  # noqa: F403

ROOT_URLCONF = "tests.otel.urls"
TRACING_APP = {**TRACING_APP, "OTEL_ENABLED": True}  # noqa: F405
