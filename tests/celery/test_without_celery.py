"""tracing_app imports and works in a project without Celery (or OpenTelemetry) installed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import sys

    sys.modules["celery"] = None  # makes `import celery` fail, as if it were not installed
    sys.modules["opentelemetry"] = None

    import django
    from django.conf import settings

    settings.configure(
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "tracing_app"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    )
    django.setup()

    from django.core import checks

    from tracing_app import bind, messaging

    assert "tracing_app.celery" not in sys.modules
    assert not [m for m in checks.run_checks() if m.id == "tracing_app.W301"]
    with bind() as ctx:
        body = messaging.message_body({"ok": True})
    assert body["metadata"]["correlation_id"] == ctx.correlation_id
    assert body["metadata"]["trace_parent"] is None
    print("ok")
    """
)


def test_tracing_app_works_without_celery() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
