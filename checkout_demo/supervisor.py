"""Run a few child processes together and stop them all cleanly: the demo's web server, worker and beat.

Each child gets its own process group (a new session), so a terminal's Ctrl-C reaches only the
supervisor, which then stops the children together: each child's stop signal to its whole group (SIGINT
by default, what Ctrl-C would send: a Celery worker shuts down warm while its pool processes ignore it,
beat exits; gunicorn takes SIGTERM, on which its master and workers finish the requests in flight), a
grace period, then SIGKILL for anything left in the group. A second Ctrl-C skips the grace period.
Children's output is copied line by line to the supervisor's stdout.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType


class Child:
    """One supervised process.

    ``ready_marker`` is a byte string its output prints once it is ready; ``stop_signal`` is what its
    process group gets when the supervisor stops.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        ready_marker: bytes | None = None,
        stop_signal: signal.Signals = signal.SIGINT,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.ready_marker = ready_marker
        self.stop_signal = stop_signal
        self.ready = threading.Event()
        self.process: subprocess.Popen[bytes] | None = None
        self._echo: threading.Thread | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, env: dict[str, str], cwd: Path) -> None:
        self.process = subprocess.Popen(  # noqa: S603 (argv built by the caller, no shell)
            self.argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._echo = threading.Thread(target=self._copy_output, name=f"{self.name}-output", daemon=True)
        self._echo.start()

    def _copy_output(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        out = sys.stdout.buffer
        for line in self.process.stdout:
            if self.ready_marker is not None and self.ready_marker in line:
                self.ready.set()
            out.write(line)
            out.flush()

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signum)

    def group_alive(self) -> bool:
        """Whether any process of the child's group (the child or a process it started) still runs."""
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def finish_output(self, timeout: float) -> None:
        if self._echo is not None:
            self._echo.join(timeout)


class Supervisor:
    def __init__(self, children: Sequence[Child], grace: float = 20.0) -> None:
        self.children = list(children)
        self.grace = grace
        self.signals = 0
        self.stopping = threading.Event()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signals += 1
        self.stopping.set()

    def run(
        self, env: dict[str, str], cwd: Path, is_ready: Callable[[], bool], on_ready: Callable[[], None]
    ) -> int:
        """Start every child, call ``on_ready`` once ``is_ready()`` holds, and return after stopping them.

        Returns 0 when stopped by SIGINT/SIGTERM, 1 when a child exited by itself (or never got ready).
        """
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for child in self.children:
                child.start(env, cwd)
            print("Started " + ", ".join(f"{c.name} (pid {c.pid})" for c in self.children), flush=True)
            failed = self._wait(is_ready, on_ready)
            self._stop_all()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 1 if failed else 0

    def _wait(self, is_ready: Callable[[], bool], on_ready: Callable[[], None]) -> bool:
        announced = False
        while not self.stopping.is_set():
            for child in self.children:
                code = child.exited()
                if code is not None:
                    print(
                        f"The {child.name} exited by itself (code {code}); stopping the others.", flush=True
                    )
                    return True
            if not announced and is_ready():
                announced = True
                on_ready()
            self.stopping.wait(0.2)
        return False

    def _stop_all(self) -> None:
        print("Stopping: " + ", ".join(f"{c.name} (pid {c.pid})" for c in self.children), flush=True)
        for child in self.children:
            child.signal_group(child.stop_signal)
        deadline = time.monotonic() + self.grace
        signals_seen = self.signals
        while any(child.group_alive() for child in self.children):
            if time.monotonic() >= deadline or self.signals > signals_seen:
                for child in self.children:
                    if child.group_alive():
                        print(f"Killing what is left of the {child.name}.", flush=True)
                        child.signal_group(signal.SIGKILL)
                break
            self._reap()
            time.sleep(0.1)
        for child in self.children:
            assert child.process is not None
            child.process.wait()
            child.finish_output(timeout=5)
        print("Stopped.", flush=True)

    def _reap(self) -> None:
        """Collect exited children so their groups empty (a zombie still counts as a group member)."""
        for child in self.children:
            child.exited()
