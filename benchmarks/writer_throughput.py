"""Trace event writer: events per second one process writes to PostgreSQL, and what it drops.

A benchmark process records request-shaped transactions (a ``request.started`` with method, path and user
agent, a ``request.finished`` with its route) through the recorder's public path, paced at an offered
rate, while the recorder's own writer thread writes them; at the end one flush writes what is left.
Written and dropped events are counted in the database, so nothing is taken on trust. A second figure is
the writer's capacity: a full buffer written by one flush, with nothing recorded meanwhile.
"""

from __future__ import annotations

import os
import time
from typing import Any

from benchmarks.edge_configs import CONFIGS, edge_environment
from benchmarks.isolation import Worker, serve
from benchmarks.report import Check, Section
from benchmarks.stats import Summary

TITLE = "Trace event writer, one process to PostgreSQL (events/s)"
TARGET_EVENTS_PER_SECOND = 20_000
PREFIX = "WB"


def _transaction(emit: Any, context: type, number: int, round_index: int) -> None:
    ctx = context(f"{PREFIX}{round_index:04d}{number:020d}", origin="http")
    emit(
        ctx,
        "request.started",
        attributes={"method": "GET", "path": "/orders/", "user_agent": "writer-benchmark"},
        owned=True,
    )
    emit(
        ctx, "request.finished", name="orders", status="200", duration_ms=1.5, attributes={"route": "orders/"}
    )


def offered(rate: int, seconds: float, round_index: int) -> dict[str, Any]:
    """Record ``rate`` events/s for ``seconds`` while the writer thread writes; then flush the rest."""
    from tracing_app.context import TraceContext
    from tracing_app.traces.recorder import emit, flush

    transactions = int(rate * seconds) // 2
    chunk = 100
    started = time.perf_counter()
    for first in range(0, transactions, chunk):
        for number in range(first, min(first + chunk, transactions)):
            _transaction(emit, TraceContext, number, round_index)
        # Pace to the offered rate: two events per transaction.
        ahead = started + (first + chunk) * 2 / rate - time.perf_counter()
        if ahead > 0:
            time.sleep(ahead)
    flush()
    elapsed = time.perf_counter() - started
    written = _written(round_index)
    return {"offered": transactions * 2, "written": written, "seconds": elapsed}


def capacity(events: int, round_index: int) -> dict[str, Any]:
    """Fill the buffer with ``events`` while the writer waits, then time the writes of all of them."""
    from django.conf import settings
    from django.test import override_settings

    from tracing_app.context import TraceContext
    from tracing_app.traces import buffer, recorder

    with override_settings(TRACING_APP={**settings.TRACING_APP, "TRACE_BUFFER_SIZE": events}):
        with buffer.pending_events._write_lock:  # the writer thread must not start on a half-filled buffer
            for number in range(events // 2):
                _transaction(recorder.emit, TraceContext, number, round_index)
            started = time.perf_counter()
        recorder.flush()
        elapsed = time.perf_counter() - started
    return {"offered": events // 2 * 2, "written": _written(round_index), "seconds": elapsed}


def _written(round_index: int) -> int:
    from tracing_app.traces.models import TraceEvent

    return TraceEvent.objects.filter(
        pid=os.getpid(), correlation_id__startswith=f"{PREFIX}{round_index:04d}"
    ).count()


def clean() -> dict[str, Any]:
    from tracing_app.traces.models import Trace, TraceEvent

    TraceEvent.objects.filter(correlation_id__startswith=PREFIX).delete()
    Trace.objects.filter(correlation_id__startswith=PREFIX).delete()
    return {}


def worker_main() -> None:
    import django

    django.setup()
    clean()
    serve({}, {"offered": offered, "capacity": capacity, "clean": clean})


def run(quick: bool) -> Section:
    rounds, seconds, rate, full = (1, 1.0, 25_000, 10_000) if quick else (3, 5.0, 25_000, 50_000)
    section = Section("writer", TITLE)
    config = CONFIGS["writer"]
    paced: list[dict[str, Any]] = []
    filled: list[dict[str, Any]] = []
    with Worker("benchmarks.writer_throughput", edge_environment(config)) as worker:
        worker.ready()
        try:
            for round_index in range(rounds):
                paced.append(
                    worker.request("offered", rate=rate, seconds=seconds, round_index=2 * round_index)
                )
                filled.append(worker.request("capacity", events=full, round_index=2 * round_index + 1))
        finally:
            worker.request("clean")

    sustained = Summary.of([r["written"] / r["seconds"] for r in paced])
    dropped = max(r["offered"] - r["written"] for r in paced)
    flushed = Summary.of([r["written"] / r["seconds"] for r in filled])
    section.columns = ["Load", "events/s written", "dropped (worst round)"]
    section.rows = [
        [f"{rate:,} events/s offered for {seconds:.0f} s", sustained.format(0), str(dropped)],
        [
            f"{full:,} buffered events, one flush",
            flushed.format(0),
            str(max(r["offered"] - r["written"] for r in filled)),
        ],
    ]
    section.checks = [
        Check(
            f"Writer sustains ≥ {TARGET_EVENTS_PER_SECOND:,} events/s from one process with no drops",
            f"{sustained.format(0, ' events/s')}, {dropped} dropped",
            sustained.median >= TARGET_EVENTS_PER_SECOND and dropped == 0,
        )
    ]
    section.notes.append(
        f"{rounds} rounds. Each transaction is two events shaped like a request's; 'written' is counted in "
        "the database after the last flush and divided by the time from the first event to that flush, so "
        "an offered load the writer keeps up with reads close to the offered rate. The buffer holds "
        "TRACE_BUFFER_SIZE (10,000) events, batches are TRACE_BATCH_SIZE (500)."
    )
    section.data = {"paced": paced, "capacity": filled}
    return section


if __name__ == "__main__":
    worker_main()
