"""The demo's test settings (tests/demo): PostgreSQL by default (``DATABASE_URL`` overrides it)."""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tracing_app")
if "TRACING_DEMO_VAR" not in os.environ:
    # Not the demo's own var/: a task the tests publish to the embedded broker would otherwise wait there
    # and run, against the demo's database, at the next `./dev demo`.
    os.environ["TRACING_DEMO_VAR"] = tempfile.mkdtemp(prefix="tracing-demo-tests-")
    atexit.register(shutil.rmtree, os.environ["TRACING_DEMO_VAR"], ignore_errors=True)

from settings.base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The app the worker harness (tests/support/worker.py) starts and publishes with.
TEST_CELERY_APP = "settings.celery"

# Trace events are written by a background thread. Only the tests that read them switch them on (with
# override_settings, or TRACE_EVENTS=1 for processes they start), so other tests write no rows behind
# their backs.
TRACING_APP = {
    **TRACING_APP,  # noqa: F405
    "TRACE_ENABLED": os.environ.get("TRACE_EVENTS") == "1",
    "TRACE_FLUSH_INTERVAL": float(os.environ.get("TRACE_FLUSH_INTERVAL", "1.0")),
    # Fault tests shorten how long the relay leaves a committed row to its publisher.
    "OUTBOX_RELAY_DELAY": float(os.environ.get("OUTBOX_RELAY_DELAY", "5.0")),
}
