"""The transactional outbox on PostgreSQL + RabbitMQ: what a request pays per task, the relay's throughput,
and how long a committed task waits before the broker has it.

Per task, from inside ``transaction.atomic()`` that writes one row of its own, as a view would: the
baseline is what projects do today, ``transaction.on_commit(lambda: task.apply_async(...))`` (published by
the request thread after the commit, lost if the broker is down then); the outbox writes its row in the
same transaction and hands the publish to a background thread. Lag is from the commit to
``after_task_publish`` (the broker accepted the message). The relay's throughput is rows published and
deleted per second by one relay.
"""

from __future__ import annotations

import gc
import os
import secrets
import threading
import time
from typing import Any

from benchmarks.edge_configs import CONFIGS, edge_environment
from benchmarks.isolation import Worker, serve
from benchmarks.report import Section
from benchmarks.stats import Summary, baseline_cells

TITLE = "Transactional outbox (PostgreSQL + RabbitMQ)"
BROKER_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
VARIANTS = {
    "on_commit": "`on_commit(apply_async)` (baseline, not durable)",
    "outbox": "`send_on_commit` (outbox row, published after commit)",
}


class Bench:
    """A Celery app publishing a no-op task to this run's own queue, with the outbox's tables at hand."""

    def __init__(self) -> None:
        from celery import Celery
        from kombu import Exchange, Queue

        from tracing_app.celery import install

        self.name = f"tr-bench-outbox-{os.getpid()}-{secrets.token_hex(4)}"
        self.app = Celery("tracing_benchmarks", broker=BROKER_URL)
        self.app.conf.update(
            broker_connection_retry_on_startup=False,
            task_ignore_result=True,
            task_default_queue=self.name,
        )
        install(self.app)
        self.app.set_current()
        self.queue = Queue(self.name, Exchange(self.name, type="direct"), routing_key=self.name)
        self.task = self.app.task(name="benchmarks.outbox_noop", shared=False)(_noop)
        with self.app.connection_for_write() as connection:
            self.queue.bind(connection.default_channel).declare()
        self.table = f"bench_outbox_orders_{secrets.token_hex(4)}"
        with django_connection().cursor() as cursor:
            cursor.execute(f"CREATE TABLE {self.table} (id bigserial PRIMARY KEY, n integer)")

    def publish(self, variant: str, count: int) -> float:
        """Microseconds per task the caller spent, ``count`` transactions of one task each."""
        from django.db import transaction

        from tracing_app.outbox import send_on_commit
        from tracing_app.outbox.enqueue import wait_for_sender

        task = self.task
        insert = f"INSERT INTO {self.table} (n) VALUES (%s)"
        gc.collect()
        started = time.perf_counter_ns()
        for index in range(count):
            with transaction.atomic(), django_connection().cursor() as cursor:
                # The view's own write: its transaction commits anyway.
                cursor.execute(insert, [index])
                if variant == "outbox":
                    send_on_commit(task.si(index))
                else:
                    transaction.on_commit(lambda index=index: task.apply_async((index,)))
        spent = (time.perf_counter_ns() - started) / count / 1000
        wait_for_sender(60)
        return spent

    def lag(self, count: int) -> list[float]:
        """Milliseconds from each commit to the broker's acceptance of its message."""
        from celery import signals
        from django.db import transaction

        from tracing_app.outbox import send_on_commit

        accepted = threading.Event()
        at: list[float] = []

        def on_published(**kwargs: Any) -> None:
            at.append(time.perf_counter())
            accepted.set()

        signals.after_task_publish.connect(on_published, weak=False, dispatch_uid="benchmarks.outbox_lag")
        lags = []
        try:
            for index in range(count):
                accepted.clear()
                with transaction.atomic():
                    send_on_commit(self.task.si(index))
                committed = time.perf_counter()
                if not accepted.wait(10):
                    raise RuntimeError("a committed task was not published within 10 s")
                lags.append((at[-1] - committed) * 1000)
        finally:
            signals.after_task_publish.disconnect(dispatch_uid="benchmarks.outbox_lag")
        return lags

    def relay(self, count: int) -> float:
        """Rows per second one relay publishes and deletes, from ``count`` rows already due."""
        from datetime import timedelta

        from django.utils import timezone

        from tracing_app.outbox.models import OutboxMessage
        from tracing_app.outbox.relay import relay_batch

        signature = dict(self.task.si(0))
        past = timezone.now() - timedelta(seconds=1)
        OutboxMessage.objects.bulk_create(
            OutboxMessage(
                task_id=f"bench-{index}",
                task_name=self.task.name,
                signature={**signature, "options": {"task_id": f"bench-{index}-{secrets.token_hex(4)}"}},
                created_at=past,
                available_at=past,
            )
            for index in range(count)
        )
        started = time.perf_counter()
        sent = 0
        while sent < count:
            batch = relay_batch()
            if not batch:
                raise RuntimeError("the relay stopped before the outbox was empty")
            sent += batch
        return sent / (time.perf_counter() - started)

    def close(self) -> None:
        from tracing_app.outbox.models import OutboxMessage

        OutboxMessage.objects.all().delete()
        with django_connection().cursor() as cursor:
            cursor.execute(f"DROP TABLE {self.table}")
        with self.app.connection_for_write() as connection:
            bound = self.queue.bind(connection.default_channel)
            bound.purge()
            bound.delete()
            bound.exchange.delete()


def _noop(*args: Any, **kwargs: Any) -> None:
    return None


def django_connection() -> Any:
    from django.db import connection

    return connection


def measure(rounds: int, tasks: int, lag_samples: int, relay_rows: int) -> dict[str, Any]:
    bench = Bench()
    try:
        for variant in VARIANTS:
            bench.publish(variant, max(tasks // 5, 10))
        timings: dict[str, list[float]] = {key: [] for key in VARIANTS}
        keys = list(VARIANTS)
        for round_index in range(rounds):
            shift = round_index % len(keys)
            for key in keys[shift:] + keys[:shift]:
                timings[key].append(bench.publish(key, tasks))
        lags = bench.lag(lag_samples)
        throughput = [bench.relay(relay_rows) for _ in range(3)]
    finally:
        bench.close()
    return {"timings": timings, "lag_ms": lags, "relay_per_second": throughput}


def worker_main() -> None:
    import django

    django.setup()
    serve({}, {"measure": measure})


def run(quick: bool) -> Section:
    rounds, tasks, lag_samples, relay_rows = (3, 20, 20, 200) if quick else (30, 100, 300, 3000)
    section = Section("outbox", TITLE)
    section.columns = ["Publisher", "µs per task (caller)", "added µs vs baseline"]
    environment = edge_environment(CONFIGS["trace_store"])
    with Worker("benchmarks.outbox_cost", environment) as worker:
        result = worker.request(
            "measure", rounds=rounds, tasks=tasks, lag_samples=lag_samples, relay_rows=relay_rows
        )
    timings = result["timings"]
    for key, label in VARIANTS.items():
        median, added, _ratio = baseline_cells(timings[key], timings["on_commit"], 1)
        section.rows.append([label, median, added])
    lag = Summary.of(result["lag_ms"])
    relay = Summary.of(result["relay_per_second"])
    section.rows.append(["commit -> broker accepted (ms, outbox)", lag.format(2), ""])
    section.rows.append(["one relay: tasks/s published and deleted", relay.format(0), ""])
    section.notes = [
        f"{rounds} interleaved rounds of {tasks} transactions, each writing one row of its own and "
        "publishing one task; the caller's time per task, commit included (the outbox's publish happens "
        "on a background thread, the baseline's in the caller).",
        f"Lag: {lag_samples} single commits, each waited for; the relay: {relay_rows} due rows, 3 times. "
        "A task whose publish failed waits OUTBOX_RELAY_DELAY (5 s) plus at most one relay interval (1 s).",
    ]
    section.data = result
    return section


if __name__ == "__main__":
    worker_main()
