"""Real Celery processes for integration tests: a ``celery worker`` (and ``celery beat``) per broker.

API
---
``run_worker(broker_url, *, queue=None, pool="prefork", concurrency=1, extra_args=(), env=None,
result_backend=None, publish=True, app_module=None) -> Iterator[CeleryProcess]``
    Context manager. Starts ``celery -A <app_module> worker`` as a subprocess, exactly as users run
    it (``app_module`` defaults to the ``TEST_CELERY_APP`` setting: ``tests.project.celery`` for the
    library's tests, ``settings.celery`` for the demo's), with this pytest session's
    ``DJANGO_SETTINGS_MODULE`` and its test database (so call it after pytest-django created it: depend
    on ``django_db_setup``; tests whose rows the worker must see need ``django_db(transaction=True)``),
    the broker ``broker_url`` and a queue of its own (``queue`` or a fresh unique name) used as the
    worker's ``task_default_queue`` too, so retries, chains and child tasks stay on it. The worker
    writes JSON log lines to a file the harness owns. Returns once the worker logged "ready" (deadline,
    no fixed sleep); on exit stops it with a warm shutdown (SIGTERM, then SIGKILL after a deadline) and
    deletes its queue from the broker.

    With ``publish=True`` (default) the test process's Celery app (``app`` of ``TEST_CELERY_APP``)
    publishes to the same broker, queue and result backend while the block runs, and is restored
    afterwards.
    ``result_backend`` defaults to the Redis broker itself, or for other brokers to a ``file://``
    folder shared with the worker.

``run_beat(broker_url, *, queue, app_module, env=None, result_backend=None) -> Iterator[CeleryProcess]``
    Context manager. Starts ``celery -A <app_module> beat`` publishing to ``queue`` (its schedule comes
    from ``app_module``); waits until beat logged that it is starting.

``CeleryProcess``
    ``.queue``, ``.broker_url``, ``.result_backend``, ``.pool`` (workers), ``.log_path``, ``.pid``;
    ``.records()``: the JSON log lines written so far, parsed (a line that is not JSON comes back as
    ``{"unparsed": line}``); ``.wait_for(predicate, timeout=30.0) -> dict``: the first record for which
    ``predicate(record)`` is true, polling until the deadline, then ``AssertionError`` with the tail of
    the log; ``.wait_for_all(predicate, count, timeout=30.0) -> list[dict]``: the first ``count``
    matching records; ``.kill(signal)``; ``.stop()``.

``publishing_to(broker_url, queue, result_backend=None)``
    Context manager: what ``run_worker(publish=True)`` does for the test process's Celery app.

``unique_queue(prefix)``, ``database_url()``, ``delete_queues(broker_url, *queues)``
    A queue name no other session uses; the ``DATABASE_URL`` of this session's test database (raises
    if it is not set up); delete this session's own queues (names as Celery declares them, or
    ``kombu.Queue`` objects for other bindings).

Fixtures (registered in ``tests/conftest.py``): ``rabbitmq_url`` and ``redis_url`` (session scope,
``TEST_RABBITMQ_URL`` / ``TEST_REDIS_URL`` override them; Redis uses database 1). Each checks its
service answers and FAILS the test otherwise (``./dev test`` starts both services).

Example::

    @pytest.fixture(scope="module")
    def worker(redis_url, django_db_setup):
        with run_worker(redis_url) as running:
            yield running

    @pytest.mark.django_db(transaction=True)
    def test_task(worker):
        with bind() as ctx:
            my_task.delay()
        record = worker.wait_for(lambda r: r["message"] == "done")
        assert record["correlation_id"] == ctx.correlation_id
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal as signals
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection, Exchange, Queue, pools

ROOT = Path(__file__).resolve().parents[2]
RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/1")
READY_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0
_POLL = 0.05

Record = dict[str, Any]


class CeleryProcess:
    """One running ``celery`` subprocess and the JSON log file it writes."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        *,
        log_path: Path,
        stderr_path: Path,
        queue: str,
        broker_url: str,
        result_backend: str | None,
        pool: str | None = None,
    ) -> None:
        self.process = process
        self.pool = pool
        self.log_path = log_path
        self.stderr_path = stderr_path
        self.queue = queue
        self.broker_url = broker_url
        self.result_backend = result_backend
        self._records: list[Record] = []
        self._offset = 0

    @property
    def pid(self) -> int:
        return self.process.pid

    def records(self) -> list[Record]:
        """Every complete log line written so far, parsed; read incrementally, so polling stays cheap."""
        try:
            with self.log_path.open("rb") as stream:
                stream.seek(self._offset)
                chunk = stream.read()
        except FileNotFoundError:
            return list(self._records)
        end = chunk.rfind(b"\n") + 1
        if end:
            self._offset += end
            for line in chunk[:end].decode("utf-8", "replace").splitlines():
                if line.strip():
                    self._records.append(_parse(line))
        return list(self._records)

    def wait_for(self, predicate: Callable[[Record], bool], timeout: float = 30.0) -> Record:
        """The first record matching ``predicate``; fails with the log's tail after ``timeout`` seconds."""
        return self.wait_for_all(predicate, 1, timeout)[0]

    def wait_for_all(
        self, predicate: Callable[[Record], bool], count: int, timeout: float = 30.0
    ) -> list[Record]:
        """The first ``count`` records matching ``predicate``, waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            found = [record for record in self.records() if _matches(predicate, record)]
            if len(found) >= count:
                return found[:count]
            if self.process.poll() is not None:
                raise AssertionError(
                    f"celery exited with {self.process.returncode} while waiting ({len(found)}/{count} "
                    f"matching records)\n{self.tail()}"
                )
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {count} matching log records "
                    f"(found {len(found)})\n{self.tail()}"
                )
            time.sleep(_POLL)

    def tail(self, lines: int = 40) -> str:
        """The last lines of the JSON log and of stderr, for failure messages."""
        parts = []
        for path in (self.log_path, self.stderr_path):
            try:
                text = path.read_text("utf-8", "replace").splitlines()[-lines:]
            except FileNotFoundError:
                text = ["(missing)"]
            parts.append(f"--- {path.name} (last {lines} lines) ---\n" + "\n".join(text))
        return "\n".join(parts)

    def kill(self, signum: int = signals.SIGTERM) -> None:
        """Send ``signum`` to the celery main process."""
        if self.process.poll() is None:
            self.process.send_signal(signum)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Warm shutdown; kill the process group if it does not exit by the deadline."""
        if self.process.poll() is None:
            self.process.send_signal(signals.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signals.SIGKILL)
                self.process.wait(timeout)


def _parse(line: str) -> Record:
    try:
        value = json.loads(line)
    except ValueError:
        return {"unparsed": line}
    return value if isinstance(value, dict) else {"unparsed": line}


def _matches(predicate: Callable[[Record], bool], record: Record) -> bool:
    try:
        return bool(predicate(record))
    except (KeyError, TypeError, AttributeError):
        return False


def unique_queue(prefix: str = "tracing-test") -> str:
    """A queue name no other test session uses."""
    return f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:10]}"


def database_url() -> str:
    """A ``DATABASE_URL`` for the database this test process is using now (the test database)."""
    from django.db import connections

    connection = connections["default"]
    params = connection.settings_dict
    test_name = (params.get("TEST") or {}).get("NAME")
    if not (params["NAME"] == test_name if test_name else str(params["NAME"]).startswith("test_")):
        raise RuntimeError(
            "the test database is not set up: mark a test of this session with django_db "
            "(transaction=True if the worker must see its rows) and depend on django_db_setup"
        )
    engine = params["ENGINE"]
    if engine.endswith("sqlite3"):
        name = str(params["NAME"])
        if name == ":memory:" or "mode=memory" in name:
            raise RuntimeError("a worker process cannot share an in-memory SQLite test database")
        return f"sqlite:///{name}"
    if not engine.endswith(("postgresql", "postgis")):
        raise RuntimeError(f"no DATABASE_URL for engine {engine}")
    user = params.get("USER") or ""
    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    host = params.get("HOST") or "127.0.0.1"
    port = f":{params['PORT']}" if params.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{params['NAME']}"


def _celery_command() -> list[str]:
    script = Path(sys.executable).with_name("celery")
    return [str(script)] if script.exists() else [sys.executable, "-m", "celery"]


def _default_result_backend(broker_url: str, workdir: Path) -> str:
    if broker_url.startswith("redis"):
        return broker_url
    results = workdir / "results"
    results.mkdir(parents=True, exist_ok=True)
    return f"file://{results}"


def _start(
    args: Sequence[str],
    *,
    workdir: Path,
    name: str,
    broker_url: str,
    queue: str,
    result_backend: str | None,
    env: Mapping[str, str] | None,
    pool: str | None = None,
) -> CeleryProcess:
    log_path = workdir / f"{name}.log"
    stderr_path = workdir / f"{name}.stderr"
    process_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": os.environ["DJANGO_SETTINGS_MODULE"],
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": broker_url,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "TRACING_DEMO_VAR": str(workdir / "var"),
        "PYTHONUNBUFFERED": "1",
    }
    if result_backend:
        process_env["CELERY_RESULT_BACKEND"] = result_backend
    process_env.update(env or {})
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [*_celery_command(), *args, "--logfile", str(log_path)],
            cwd=ROOT,
            env=process_env,
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
            start_new_session=True,
        )
    return CeleryProcess(
        process,
        log_path=log_path,
        stderr_path=stderr_path,
        queue=queue,
        broker_url=broker_url,
        result_backend=result_backend,
        pool=pool,
    )


def _worker_ready(record: dict[str, Any]) -> bool:
    """The worker's "ready" line, as JSON or as a text line (a worker under a text LOGGING)."""
    if "unparsed" in record:
        return record["unparsed"].rstrip().endswith(" ready.")
    return record.get("logger") == "celery.apps.worker" and record.get("message", "").endswith(" ready.")


@contextmanager
def run_worker(
    broker_url: str,
    *,
    queue: str | None = None,
    pool: str = "prefork",
    concurrency: int = 1,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    result_backend: str | None = None,
    publish: bool = True,
    app_module: str | None = None,
) -> Iterator[CeleryProcess]:
    """Run a real ``celery worker`` for the duration of the block; see the module docstring."""
    app_module = app_module or _test_celery_app()
    queue = queue or unique_queue()
    workdir = Path(tempfile.mkdtemp(prefix=f"{queue}-"))
    result_backend = result_backend or _default_result_backend(broker_url, workdir)
    node = f"{queue}-{pool}@%h"
    worker = _start(
        [
            "-A",
            app_module,
            "worker",
            "--loglevel=INFO",
            "--pool",
            pool,
            "--concurrency",
            str(concurrency),
            "--queues",
            queue,
            "--hostname",
            node,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            *extra_args,
        ],
        workdir=workdir,
        name="worker",
        broker_url=broker_url,
        queue=queue,
        result_backend=result_backend,
        env=env,
        pool=pool,
    )
    try:
        worker.wait_for(_worker_ready, timeout=READY_TIMEOUT)
        if publish:
            with publishing_to(broker_url, queue, result_backend):
                yield worker
        else:
            yield worker
    finally:
        worker.stop()
        delete_queues(broker_url, queue)
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def run_beat(
    broker_url: str,
    *,
    queue: str,
    app_module: str,
    env: Mapping[str, str] | None = None,
    result_backend: str | None = None,
) -> Iterator[CeleryProcess]:
    """Run ``celery -A app_module beat`` publishing to ``queue``; see the module docstring."""
    workdir = Path(tempfile.mkdtemp(prefix=f"{queue}-beat-"))
    result_backend = result_backend or _default_result_backend(broker_url, workdir)
    beat = _start(
        [
            "-A",
            app_module,
            "beat",
            "--loglevel=INFO",
            "--schedule",
            str(workdir / "schedule"),
            "--max-interval",
            "1",
        ],
        workdir=workdir,
        name="beat",
        broker_url=broker_url,
        queue=queue,
        result_backend=result_backend,
        env=env,
    )
    try:
        beat.wait_for(lambda r: "beat: Starting" in r["message"], timeout=READY_TIMEOUT)
        yield beat
    finally:
        beat.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def publishing_to(broker_url: str, queue: str, result_backend: str | None = None) -> Iterator[None]:
    """Point the test process's Celery app at ``broker_url`` / ``queue`` while the block runs."""
    app = importlib.import_module(_test_celery_app()).app
    changes = {"broker_url": broker_url, "task_default_queue": queue}
    if result_backend:
        changes["result_backend"] = result_backend
    saved = {key: app.conf[key] for key in changes}
    _drop_connections(app)
    app.conf.update(changes)
    try:
        yield
    finally:
        _drop_connections(app)
        app.conf.update(saved)


def _test_celery_app() -> str:
    from django.conf import settings

    return settings.TEST_CELERY_APP


def _drop_connections(app: Any) -> None:
    # The app caches its broker pool, producer pool and result backend on first use, and kombu keeps
    # the pools in a process-wide registry; a new broker or backend only takes effect once all are dropped.
    # The outbox's sending thread holds a result backend of its own.
    from tracing_app.outbox.enqueue import restart_sender, wait_for_sender

    wait_for_sender()
    restart_sender()
    pools.reset()
    app._pool = None
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None
    app._backend_cache = None
    app._local.__dict__.pop("backend", None)


def delete_queues(broker_url: str, *queues: str | Queue) -> None:
    """Delete this session's own queues from the broker (never anyone else's).

    A name stands for a queue as Celery declares it (bound to an exchange of the same name, which goes
    too); pass a ``kombu.Queue`` for any other binding. Queues are declared before deletion because
    virtual transports (Redis) only remove bindings they know of.
    """
    with Connection(broker_url, connect_timeout=5) as connection:
        for queue in queues:
            if isinstance(queue, str):
                queue = Queue(queue, Exchange(queue, type="direct"), routing_key=queue)
            bound = queue(connection.default_channel)
            bound.declare()
            bound.delete()
            if queue.exchange.name == queue.name:
                bound.exchange.delete()


def _require(url: str, what: str) -> str:
    try:
        with Connection(url, connect_timeout=5) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:
        pytest.fail(f"{what} at {url} is not reachable ({exc!r}); `./dev test` starts it", pytrace=False)
    return url


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    """The RabbitMQ broker URL; fails (never skips) when RabbitMQ is down."""
    return _require(RABBITMQ_URL, "RabbitMQ")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis broker URL; fails (never skips) when Redis is down."""
    return _require(REDIS_URL, "Redis")
