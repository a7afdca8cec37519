"""Benchmark processes: each configuration runs in its own Python process, driven over stdin/stdout.

The parent sends one JSON command per line and reads one JSON answer per line. Workers stay alive between
commands, so configurations can be measured in interleaved rounds without paying Django's start-up again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent


class WorkerError(RuntimeError):
    pass


class Worker:
    """A benchmark process running ``python -m module`` with the benchmark settings and ``env``."""

    def __init__(self, module: str, env: Mapping[str, str] | None = None) -> None:
        self.module = module
        self._stderr = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115 (closed in close())
        self._process = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=ROOT,
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "benchmarks.django_settings",
                # One hash seed for every worker, so configurations differ in their code, not in how
                # their processes happened to lay out sets and dicts.
                "PYTHONHASHSEED": "0",
                **(env or {}),
            },
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self._hello: dict[str, Any] | None = None

    def ready(self) -> dict[str, Any]:
        """Wait for the worker to finish starting; returns what it announced (e.g. probe results)."""
        if self._hello is None:
            self._hello = self.receive()
        return self._hello

    def receive(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            self._process.wait()
            raise WorkerError(f"{self.module} exited with {self._process.returncode}:\n{self._stderr_tail()}")
        return json.loads(line)

    def request(self, op: str, **arguments: Any) -> dict[str, Any]:
        self.ready()
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps({"op": op, **arguments}) + "\n")
        self._process.stdin.flush()
        return self.receive()

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._stderr.close()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _stderr_tail(self, limit: int = 4000) -> str:
        self._stderr.seek(0)
        return self._stderr.read()[-limit:]


def serve(hello: dict[str, Any], operations: Mapping[str, Callable[..., dict[str, Any]]]) -> None:
    """The worker side: announce ``hello``, then answer commands until the parent closes stdin.

    The protocol gets a private copy of stdout and everything else printed goes to stderr, so a library
    that prints cannot corrupt an answer.
    """
    channel = _claim_stdout()
    _send(channel, hello)
    for line in sys.stdin:
        command = json.loads(line)
        operation = operations[command.pop("op")]
        _send(channel, operation(**command))


def _claim_stdout() -> IO[str]:
    sys.stdout.flush()
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    return channel


def _send(channel: IO[str], message: dict[str, Any]) -> None:
    channel.write(json.dumps(message) + "\n")
    channel.flush()
