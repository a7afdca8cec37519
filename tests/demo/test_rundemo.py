"""``manage.py rundemo`` on the embedded default (SQLite + filesystem broker): serves, then stops cleanly.

It runs gunicorn, a Celery worker and Celery beat; ``tests/demo/test_demo_server.py`` loads the same
gunicorn command with concurrent clients.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from checkout_demo.customers import CUSTOMERS, TOKENS_FILE, saved_tokens
from checkout_demo.scenario import run_scenarios
from tests.support.ports import free_port
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
STARTED = re.compile(r"Started web server \(pid (\d+)\), worker \(pid (\d+)\), beat \(pid (\d+)\)")


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


class Demo:
    def __init__(self, var: Path, port: int) -> None:
        self.output = var / "rundemo.out"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "settings.demo",
            "TRACING_DEMO_VAR": str(var),
            "PYTHONUNBUFFERED": "1",
        }
        # The embedded default: no server named anywhere.
        for name in (
            "DATABASE_URL",
            "CELERY_BROKER_URL",
            "CELERY_RESULT_BACKEND",
            "CELERY_TASK_DEFAULT_QUEUE",
        ):
            env.pop(name, None)
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "rundemo", "--port", str(port)],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.children: list[int] = []

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def wait_for(self, what: str, timeout: float = 120) -> None:
        wait_until(lambda: what in self.text() or self.process.poll() is not None, timeout=timeout, what=what)
        assert what in self.text(), self.text()[-3000:]

    def child_pids(self) -> list[int]:
        found = wait_until(lambda: STARTED.search(self.text()), timeout=60, what="the children's PIDs")
        self.children = [int(pid) for pid in found.groups()]
        return self.children

    def cleanup(self) -> None:
        for pgid in [self.process.pid, *self.children]:
            if group_alive(pgid):
                os.killpg(pgid, signal.SIGKILL)
        self.process.wait(10)


@pytest.fixture
def demo(tmp_path):
    started = []

    def start(port: int) -> Demo:
        started.append(Demo(tmp_path, port))
        return started[-1]

    yield start
    for instance in started:
        instance.cleanup()


def test_rundemo_serves_the_scenarios_then_stops_on_ctrl_c(demo, tmp_path):
    port = free_port()
    run = demo(port)
    web, worker, beat = run.child_pids()
    run.wait_for("The checkout demo is running.")
    assert re.search(r"Admin\s+http://127\.0\.0\.1:\d+/admin/\s+user: admin\s+password: \S+", run.text())
    assert f"web server pid {web}, worker pid {worker}, beat pid {beat}" in run.text()
    assert f"Listening at: http://127.0.0.1:{port}" in run.text()  # gunicorn, not the development server
    assert "beat: Starting" in run.text()
    assert list(tmp_path.glob("celerybeat-schedule*"))

    tokens = saved_tokens(run.output.parent / TOKENS_FILE)
    assert set(tokens) == set(CUSTOMERS)
    outcomes = run_scenarios(f"http://127.0.0.1:{port}", deadline_seconds=90, tokens=tokens)
    assert [(o.scenario.name, o.problems) for o in outcomes if not o.ok] == []

    os.kill(run.process.pid, signal.SIGINT)
    assert run.process.wait(60) == 0, run.text()[-3000:]
    assert not group_alive(web)  # gunicorn's workers too
    assert not group_alive(worker)  # the worker's pool processes too: they share its group
    assert not group_alive(beat)
    assert "Warm shutdown" in run.text()
    assert "Shutting down: Master" in run.text()
    assert run.text().rstrip().endswith("Stopped.")


def test_rundemo_serves_the_admin_stylesheets_then_stops_on_sigterm(demo):
    port = free_port()
    run = demo(port)
    children = run.child_pids()
    run.wait_for("The checkout demo is running.")
    base = f"http://127.0.0.1:{port}"

    with urllib.request.urlopen(f"{base}/admin/login/", timeout=10) as response:
        page = response.read().decode()
    stylesheets = re.findall(r'<link rel="stylesheet" href="([^"]+\.css)"', page)
    assert "/static/admin/css/base.css" in stylesheets
    for path in stylesheets:
        with urllib.request.urlopen(f"{base}{path}", timeout=10) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/css")
            assert b"{" in response.read()

    compressed = urllib.request.Request(
        f"{base}/static/admin/css/base.css", headers={"Accept-Encoding": "gzip"}
    )
    with urllib.request.urlopen(compressed, timeout=10) as response:
        assert response.headers["Content-Encoding"] == "gzip"

    os.kill(run.process.pid, signal.SIGTERM)
    assert run.process.wait(60) == 0, run.text()[-3000:]
    assert [pid for pid in children if group_alive(pid)] == []
    assert run.text().rstrip().endswith("Stopped.")


def test_rundemo_stops_the_worker_when_the_web_server_cannot_start(demo):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        run = demo(taken.getsockname()[1])
        web, worker, beat = run.child_pids()
        assert run.process.wait(120) == 1, run.text()[-3000:]
    assert "The web server exited by itself" in run.text()
    assert not group_alive(web)
    assert not group_alive(worker)
    assert not group_alive(beat)
