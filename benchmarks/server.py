"""gunicorn serving one benchmark configuration on a free loopback port."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable

from benchmarks.edge_configs import EdgeConfig, edge_environment
from benchmarks.isolation import ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``gunicorn benchmarks.wsgi`` for ``config``: one sync worker unless told otherwise."""

    def __init__(self, config: EdgeConfig, workers: int = 1, threads: int = 1) -> None:
        self.port = free_port()
        self.log = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(workers),
                "--worker-class",
                "sync" if threads == 1 else "gthread",
                "--threads",
                str(threads),
                "--log-level",
                "warning",
                "benchmarks.wsgi:application",
            ],
            cwd=ROOT,
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "benchmarks.django_settings",
                **edge_environment(config),
            },
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_ready(self, paths: Iterable[str], timeout: float = 60.0) -> None:
        """Wait until every path answers a GET with a status below 500 (a POST-only view answers 405)."""
        deadline = time.monotonic() + timeout
        for path in paths:
            while True:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"gunicorn did not serve {path} on port {self.port}:\n{self._log_tail()}"
                    )
                try:
                    connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                    connection.request("GET", path)
                    status = connection.getresponse().status
                    connection.close()
                except OSError:
                    time.sleep(0.05)
                    continue
                if status >= 500 or status == 404:
                    raise RuntimeError(f"gunicorn answered {status} on {path}:\n{self._log_tail()}")
                break

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _log_tail(self) -> str:
        self.log.seek(0)
        return self.log.read()[-3000:]
