"""The demo project served for real, by the gunicorn command `./dev demo` runs, spoken to over HTTP."""

import json
import os
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import pytest

from checkout_demo.management.commands.rundemo import web_server_argv
from tests.support.ports import free_port
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    var = tmp_path_factory.mktemp("demo-server")
    port = free_port()
    log_path = var / "server.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "settings.demo",
        "TRACING_DEMO_VAR": str(var),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DATABASE_URL", None)
    with log_path.open("w") as log:
        process = subprocess.Popen(
            web_server_argv("127.0.0.1", port, workers=2, threads=8, grace=10),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: _connectable(port), timeout=30, what="the demo server to listen")
        yield f"http://127.0.0.1:{port}", log_path
    finally:
        process.terminate()  # gunicorn's graceful stop
        process.wait(timeout=30)


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


def test_a_hundred_concurrent_clients_all_get_answers(demo_server):
    base, _ = demo_server
    clients = 100
    # Every client connects at the same moment: the burst a development server drops with resets.
    start_together = threading.Barrier(clients, timeout=30)

    def ping(_: int) -> str:
        start_together.wait()
        with urllib.request.urlopen(f"{base}/api/ping/", timeout=10) as response:
            assert response.status == 200
            assert json.loads(response.read())["data"] == {"pong": True}
            return response.headers["X-Correlation-ID"]

    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(ping, index) for index in range(clients)]
        done, not_done = wait(futures, timeout=30)
        assert not not_done, f"{len(not_done)} clients had no answer within the deadline"
    failures = [repr(future.exception()) for future in done if future.exception()]
    assert failures == []
    assert len({future.result() for future in done}) == clients
