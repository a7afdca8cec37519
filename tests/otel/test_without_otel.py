"""Without the ``otel`` extra everything else still works, even with OTEL_ENABLED set.

A subprocess blocks every ``opentelemetry`` import with a meta path finder, as if the packages were not
installed, then starts Django with OpenTelemetry switched on, serves a request, logs, builds outgoing
headers and a raw message body.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import importlib.abc, io, json, logging, sys, types

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "opentelemetry" or name.startswith("opentelemetry."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Block())
    for name in [m for m in sys.modules if m.startswith("opentelemetry")]:
        del sys.modules[name]

    log = io.StringIO()
    handler = logging.StreamHandler(log)
    logging.getLogger("tracing_app").addHandler(handler)

    import django
    from django.conf import settings
    from django.urls import path
    django.setup()

    from django.http import JsonResponse
    from django.test import Client
    from tracing_app import bind, get_correlation_id, messaging, otel, outgoing_http
    from tracing_app.logs import CorrelationIdFilter

    records = []
    collect = logging.Handler()
    collect.addFilter(CorrelationIdFilter())
    collect.emit = records.append
    logging.getLogger("probe").addHandler(collect)
    logging.getLogger("probe").setLevel(logging.INFO)

    def view(request):
        logging.getLogger("probe").info("in view")
        return JsonResponse({"correlation_id": get_correlation_id()})

    urls = types.ModuleType("otel_free_urls")
    urls.urlpatterns = [path("probe/", view)]
    sys.modules["otel_free_urls"] = urls
    settings.ROOT_URLCONF = "otel_free_urls"

    response = Client().get("/probe/")
    with bind() as ctx:
        headers = outgoing_http.outgoing_headers()
        metadata = messaging.message_body({"x": 1})["metadata"]
        with outgoing_http.detached_trace("third party") as detached:
            pass
    try:
        import opentelemetry  # noqa: F401
        blocked = False
    except ImportError:
        blocked = True
    print(json.dumps({
        "blocked": blocked,
        "enabled_setting": settings.TRACING_APP.get("OTEL_ENABLED"),
        "available": otel.available(),
        "is_enabled": otel.is_enabled(),
        "enable": otel.enable(),
        "status": response.status_code,
        "header": response.get("X-Correlation-ID"),
        "body_id": response.json()["correlation_id"],
        "record_ids": [records[0].correlation_id, records[0].trace_id, records[0].span_id],
        "outgoing": headers,
        "bound_id": ctx.correlation_id,
        "trace_parent": metadata["trace_parent"],
        "detached": detached,
        "traceparent": otel.current_traceparent(),
        "log": log.getvalue(),
    }))
    """
)


def test_everything_works_without_opentelemetry_installed():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.project.settings", "TEST_OTEL": "1"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["blocked"] is True
    assert seen["enabled_setting"] is True
    assert (seen["available"], seen["is_enabled"], seen["enable"]) == (False, False, False)
    assert "OpenTelemetry is not installed" in seen["log"]
    assert seen["status"] == 200
    assert seen["header"] == seen["body_id"] == seen["record_ids"][0]
    assert seen["record_ids"][1:] == ["-", "-"]
    assert seen["outgoing"] == {"X-Correlation-ID": seen["bound_id"]}
    assert seen["trace_parent"] is None
    assert seen["detached"] is None
    assert seen["traceparent"] is None
