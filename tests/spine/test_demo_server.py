"""The demo project served for real: `runserver` in a subprocess, spoken to over HTTP."""

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def demo_server(tmp_path):
    port = free_port()
    log_path = tmp_path / "server.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "settings.demo",
        "TRACING_DEMO_VAR": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DATABASE_URL", None)
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: _connectable(port), timeout=30, what="the demo server to listen")
        yield f"http://127.0.0.1:{port}", log_path
    finally:
        process.terminate()
        process.wait(timeout=10)


def _connectable(port):
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _json_lines(path):
    lines = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def test_ping_404_and_log_line_share_the_id(demo_server):
    base, log_path = demo_server
    with urllib.request.urlopen(f"{base}/api/ping/") as response:
        cid = response.headers["X-Correlation-ID"]
        body = json.loads(response.read())
    assert body == {"data": {"pong": True}, "meta": {"correlation_id": cid}}

    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{base}/no-such-page/")
    not_found_id = missing.value.headers["X-Correlation-ID"]
    assert missing.value.code == 404
    assert f'<code id="correlation-id">{not_found_id}</code>' in missing.value.read().decode()

    logged = wait_until(
        lambda: [line for line in _json_lines(log_path) if line["correlation_id"] == not_found_id],
        what="the 404's JSON log line",
    )
    assert logged[0]["message"] == "Not Found: /no-such-page/"
    served = wait_until(
        lambda: [line for line in _json_lines(log_path) if line["correlation_id"] == cid],
        what="the ping's JSON log line",
    )
    assert served[0]["logger"] == "tracing_app.access"
    assert served[0]["message"].startswith('"GET /api/ping/" 200 (')
    assert served[0]["status_code"] == 200
