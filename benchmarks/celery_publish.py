"""Celery publish: cost per ``apply_async`` with and without tracing_app's publish receivers, to RabbitMQ
and Redis, and the header bytes they add to each message.

Each broker gets a queue and exchange named for this run only; they are purged between rounds and
deleted at the end, so no other consumer's messages are touched. No worker consumes them: the figure is
the publisher's cost, which is what a web request pays.
"""

from __future__ import annotations

import gc
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks.edge_configs import CONFIGS, edge_environment
from benchmarks.isolation import Worker, serve
from benchmarks.report import Check, Section
from benchmarks.stats import baseline_cells, paired_differences

TITLE = "Celery publish (µs per apply_async)"
BROKERS = {
    # kombu's in-process transport: everything the publisher does, without a network round trip.
    "in-memory transport": "memory://",
    "RabbitMQ": os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//"),
    "Redis": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
}
SIGNAL_BUDGET_US = 20.0
HEADER_BUDGET_BYTES = 200
# Variant -> (tracing_app's header receiver connected, trace event receiver connected, sampled).
VARIANTS = {
    "none": (False, False, True),
    "headers": (True, False, True),
    "headers_unsampled": (True, True, False),
    "headers_sampled": (True, True, True),
}
LABELS = {
    "none": "no publish receivers (baseline)",
    "headers": "tracing_app headers",
    "headers_unsampled": "tracing_app headers + event recording, sampled out",
    "headers_sampled": "tracing_app headers + event recording, sampled in",
}


class Publisher:
    """A Celery app publishing a no-op task to this run's own queue on one broker."""

    def __init__(self, broker_url: str) -> None:
        from celery import Celery
        from kombu import Exchange, Queue

        from tracing_app.celery import install

        name = f"tr-bench-{os.getpid()}-{secrets.token_hex(4)}"
        self.app = Celery("tracing_benchmarks", broker=broker_url, set_as_current=False)
        self.app.conf.update(broker_connection_retry_on_startup=False, task_ignore_result=True)
        install(self.app)
        self.queue = Queue(name, Exchange(name, type="direct"), routing_key=name)
        self.task = self.app.task(name="benchmarks.noop", shared=False)(_noop)
        self.broker_url = broker_url

    def publish(self, count: int) -> None:
        apply_async, queue = self.task.apply_async, self.queue
        for index in range(count):
            apply_async((index,), {"order": "A-1"}, queue=queue)

    @contextmanager
    def channel(self) -> Iterator[Any]:
        with self.app.connection_for_write() as connection:
            yield connection.default_channel

    def purge(self) -> None:
        with self.channel() as channel:
            self.queue.bind(channel).purge()

    def raw_size_of_last_message(self) -> int | None:
        """Bytes of the stored message on Redis (its whole JSON document), None on other brokers."""
        if not self.broker_url.startswith("redis"):
            return None
        with self.channel() as channel:
            raw = channel.client.lindex(self.queue.name, 0)
        return None if raw is None else len(raw)

    def delete(self) -> None:
        with self.channel() as channel:
            bound = self.queue.bind(channel)
            bound.purge()
            bound.delete()
            bound.exchange.delete()


def _noop(*args: Any, **kwargs: Any) -> None:
    return None


@contextmanager
def _variant(key: str) -> Iterator[None]:
    from celery import signals

    from tracing_app.celery import pipeline
    from tracing_app.context import TraceContext, activate, deactivate
    from tracing_app.ids import new_id

    headers, events, sampled = VARIANTS[key]
    receivers: list[tuple[Any, Callable[..., None], str, bool]] = [
        (
            signals.before_task_publish,
            pipeline._before_task_publish,
            pipeline.dispatch_uid(pipeline._before_task_publish),
            headers,
        ),
        (
            signals.after_task_publish,
            pipeline._after_task_publish,
            pipeline.dispatch_uid(pipeline._after_task_publish),
            events,
        ),
    ]
    for signal, receiver, uid, connect in receivers:
        signal.disconnect(receiver, dispatch_uid=uid)
        if connect:
            signal.connect(receiver, weak=False, dispatch_uid=uid)
        # A receiver connected under another dispatch_uid would be timed in every variant: refuse to measure.
        if len(signal.receivers) != int(connect):
            raise RuntimeError(
                f"{key}: expected {int(connect)} receivers on {signal.name}, found {len(signal.receivers)}"
            )
    # Published from inside a request's transaction, as a view would.
    token = activate(TraceContext(new_id(), sampled=sampled, origin="http"))
    try:
        yield
    finally:
        deactivate(token)


def _captured_headers(publisher: Publisher, variant: str) -> dict[str, Any]:
    from celery import signals

    captured: dict[str, Any] = {}

    def capture(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
        captured.update(headers or {})

    with _variant(variant):
        signals.before_task_publish.connect(capture, weak=False, dispatch_uid="benchmarks.capture")
        try:
            publisher.publish(1)
        finally:
            signals.before_task_publish.disconnect(dispatch_uid="benchmarks.capture")
    return captured


def header_bytes(publisher: Publisher) -> dict[str, Any]:
    """What tracing_app's headers add to one message: as JSON, as an AMQP table, and on Redis's wire."""
    from amqp.serialization import dumps

    publisher.purge()
    plain = _captured_headers(publisher, "none")
    plain_raw = publisher.raw_size_of_last_message()
    publisher.purge()
    traced = _captured_headers(publisher, "headers")
    traced_raw = publisher.raw_size_of_last_message()
    publisher.purge()
    added = {k: v for k, v in traced.items() if k not in plain}
    # Celery's own per-message values (task ID, timestamps) are the same size in both messages.
    return {
        "added_headers": added,
        "json_bytes": len(json.dumps(added, separators=(",", ":"))) - 2,
        "amqp_table_bytes": len(dumps("F", [added])) - 4,
        "redis_message_bytes": None if plain_raw is None or traced_raw is None else traced_raw - plain_raw,
    }


def signal_only(rounds: int, sends: int) -> dict[str, list[float]]:
    """The before_task_publish send alone, with no broker: the receivers' own cost, without network noise."""
    from celery import signals

    template = {
        "lang": "py",
        "task": "benchmarks.noop",
        "id": "5b0e4b8a-6a53-4f3c-9d1e-2b1f0c8d7e6a",
        "retries": 0,
        "root_id": "5b0e4b8a-6a53-4f3c-9d1e-2b1f0c8d7e6a",
        "parent_id": None,
    }
    timings: dict[str, list[float]] = {key: [] for key in VARIANTS}
    send = signals.before_task_publish.send
    for _ in range(rounds):
        for key in VARIANTS:
            with _variant(key):
                gc.collect()
                started = time.perf_counter_ns()
                for _ in range(sends):
                    send(
                        sender="benchmarks.noop",
                        body=(),
                        exchange="",
                        routing_key="q",
                        headers=dict(template),
                    )
                timings[key].append((time.perf_counter_ns() - started) / sends / 1000)
    return timings


def measure(broker: str, rounds: int, publishes: int) -> dict[str, Any]:
    publisher = Publisher(BROKERS[broker])
    try:
        for key in VARIANTS:
            with _variant(key):
                publisher.publish(max(publishes // 5, 20))
        publisher.purge()
        timings: dict[str, list[float]] = {key: [] for key in VARIANTS}
        keys = list(VARIANTS)
        for round_index in range(rounds):
            shift = round_index % len(keys)
            for key in keys[shift:] + keys[:shift]:
                with _variant(key):
                    gc.collect()
                    started = time.perf_counter_ns()
                    publisher.publish(publishes)
                    timings[key].append((time.perf_counter_ns() - started) / publishes / 1000)
                publisher.purge()
        sizes = header_bytes(publisher)
    finally:
        publisher.delete()
    return {"timings": timings, "sizes": sizes}


def worker_main() -> None:
    import django

    django.setup()
    from tracing_app.traces import recorder

    def measured(**arguments: Any) -> dict[str, Any]:
        result = measure(**arguments)
        recorder.flush()
        return result

    serve(
        {},
        {
            "measure": measured,
            "signal_only": lambda rounds, sends: {"timings": signal_only(rounds, sends)},
        },
    )


def run(quick: bool) -> Section:
    # Many short rounds: a broker shared with other work drifts, and short neighbouring rounds pair well.
    rounds, publishes = (5, 10) if quick else (150, 50)
    signal_rounds, sends = (2, 1000) if quick else (15, 20000)
    section = Section("celery_publish", TITLE)
    section.columns = ["Broker", "Publisher", "µs/apply_async", "added µs vs baseline"]
    results: dict[str, Any] = {}
    with Worker("benchmarks.celery_publish", edge_environment(CONFIGS["tracing_app_sampled"])) as worker:
        for broker in BROKERS:
            results[broker] = worker.request("measure", broker=broker, rounds=rounds, publishes=publishes)
        signal = worker.request("signal_only", rounds=signal_rounds, sends=sends)["timings"]

    for broker, result in results.items():
        _add_rows(section, broker, result["timings"], digits=1)
        added = paired_differences(result["timings"]["headers"], result["timings"]["none"])
        section.checks.append(
            Check(
                f"publish signal adds ≤ {SIGNAL_BUDGET_US:.0f} µs/task ({broker}, tracing_app headers)",
                added.format(1, " µs"),
                added.median <= SIGNAL_BUDGET_US,
            )
        )
    _add_rows(section, "none: `before_task_publish.send` alone", signal, digits=2)

    redis_bytes = results["Redis"]["sizes"]["redis_message_bytes"]
    amqp_bytes = results["RabbitMQ"]["sizes"]["amqp_table_bytes"]
    sizes = results["Redis"]["sizes"]
    section.checks.append(
        Check(
            f"headers add ≤ {HEADER_BUDGET_BYTES} bytes per message",
            f"{redis_bytes} bytes on Redis, {amqp_bytes} bytes in the AMQP header table",
            max(redis_bytes, amqp_bytes) <= HEADER_BUDGET_BYTES,
        )
    )
    section.notes = [
        f"{rounds} rounds of {publishes} `apply_async` calls per broker and publisher, interleaved, from "
        "inside a transaction (as a view would); the queue is purged between rounds. The last rows time "
        f"{signal_rounds} rounds of {sends} signal sends with no broker: the receivers' own cost.",
        f"Headers added per message: {', '.join(f'{k}={v!r}' for k, v in sizes['added_headers'].items())} "
        f"({sizes['json_bytes']} bytes as JSON; {redis_bytes} more bytes in the message Redis stores; "
        f"{amqp_bytes} bytes in RabbitMQ's AMQP header table).",
        "Sampled-in recording buffers a `task.published` event in memory; a background thread writes "
        "batches to PostgreSQL (the benchmark database), so part of its cost lands outside the call.",
    ]
    section.data = {"brokers": results, "signal_only": signal}
    return section


def _add_rows(section: Section, broker: str, timings: dict[str, list[float]], digits: int) -> None:
    baseline = timings["none"]
    for key, values in timings.items():
        median, added, _ratio = baseline_cells(values, baseline, digits)
        section.rows.append([broker, LABELS[key], median, added])


if __name__ == "__main__":
    worker_main()
