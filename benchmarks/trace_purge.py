"""Trace purge: ``purge_traces`` removing 10,000,000 expired events while a writer keeps inserting.

The store is generated once with COPY (:mod:`benchmarks.trace_rows`) into ``<benchmark
database>_purge_seed_<events>``: the expired transactions a day past the retention period, then recent
ones that must survive. Each run copies that database (``CREATE DATABASE ... TEMPLATE``) and purges the
copy, so the seed is reused. A thread of the purging process inserts batches of events through the ORM
the whole time, as a busy site's recorder would; each insert's latency before and during the purge
shows whether the purge blocks writers.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from benchmarks import database, trace_rows
from benchmarks.edge_configs import CONFIGS, edge_environment
from benchmarks.isolation import Worker, serve
from benchmarks.report import Check, Section
from benchmarks.stats import Summary

TITLE = "Trace purge (expired events deleted while a writer inserts)"
EVENTS_TABLE = "tracing_app_traceevent"
TRACES_TABLE = "tracing_app_trace"
RETENTION = timedelta(days=7)
# Expired and recent events stored before the purge.
FULL = (10_000_000, 100_000)
QUICK = (100_000, 10_000)
WRITER_BATCH = 100
BASELINE_SECONDS = 2.0
TARGET_SECONDS = 60.0
# An insert waiting longer than this during the purge counts as blocked.
STALL_MS = 1000.0


def _seed(expired: int, recent: int) -> tuple[str, datetime, bool]:
    """The seed database's URL, when its recent part was generated, and whether it was generated now."""
    target = database.prepare(f"_purge_seed_{expired}")
    expired_transactions = expired // trace_rows.EVENTS_PER_TRANSACTION
    recent_transactions = recent // trace_rows.EVENTS_PER_TRANSACTION
    with psycopg.connect(target, autocommit=True) as connection:
        (stored,) = connection.execute(f"SELECT count(*) FROM {EVENTS_TABLE}").fetchone()
        generated = stored != expired + recent
        if generated:
            connection.execute(f"TRUNCATE {EVENTS_TABLE}, {TRACES_TABLE}")
            now = datetime.now(UTC)
            parts = [
                trace_rows.Part(0, expired_transactions, now - RETENTION - timedelta(days=1)),
                trace_rows.Part(expired_transactions, recent_transactions, now),
            ]
            trace_rows.copy_store(connection, EVENTS_TABLE, TRACES_TABLE, parts)
        (newest,) = connection.execute(f"SELECT max(timestamp) FROM {EVENTS_TABLE}").fetchone()
    return target, newest, generated


def _copy(seed: str, target: str) -> None:
    """Replace the database ``target`` with a fresh copy of ``seed``."""
    name, template = (sql.Identifier(urlsplit(url).path.lstrip("/")) for url in (target, seed))
    with psycopg.connect(database.maintenance_url(), autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        connection.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(name, template)
        )


class Writer(threading.Thread):
    """Inserts ``WRITER_BATCH`` events per statement in a loop, noting when each insert began and ended."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.inserts: list[tuple[float, float]] = []
        self.failed: str = ""
        self._done = threading.Event()

    def run(self) -> None:
        from django.db import connection

        from tracing_app.traces.models import TraceEvent

        try:
            while not self._done.is_set():
                moment = datetime.now(UTC)
                rows = [
                    TraceEvent(
                        correlation_id="WRITER", hop_id="WRITER", sequence=n, kind="log", timestamp=moment
                    )
                    for n in range(WRITER_BATCH)
                ]
                started = time.monotonic()
                TraceEvent.objects.bulk_create(rows)
                self.inserts.append((started, time.monotonic()))
        except Exception as exc:  # reported with the figures, not lost in a thread
            self.failed = repr(exc)
        finally:
            connection.close()

    def stop(self) -> None:
        self._done.set()
        self.join()


def _latencies(inserts: list[tuple[float, float]], start: float, end: float) -> dict[str, Any]:
    inside = [(begun, ended) for begun, ended in inserts if start <= begun < end]
    waits = [(ended - begun) * 1000 for begun, ended in inside]
    ends = [start] + [ended for _, ended in inside] + [end]
    return {
        "inserts": len(inside),
        "events_per_second": len(inside) * WRITER_BATCH / (end - start),
        "latency_ms": Summary.of(waits).as_dict() if waits else None,
        "p99_ms": sorted(waits)[int(len(waits) * 0.99)] if waits else None,
        "longest_gap_ms": max(b - a for a, b in pairwise(ends)) * 1000,
    }


def purge_while_writing(older_than_seconds: float) -> dict[str, Any]:
    """Worker side: the writer runs alone for a while, then alongside the purge."""
    import django

    django.setup()
    from tracing_app.conf import app_settings
    from tracing_app.traces.models import Trace, TraceEvent
    from tracing_app.traces.retention import purge

    writer = Writer()
    writer.start()
    time.sleep(BASELINE_SECONDS)  # the writer's undisturbed pace, to compare the purge's with
    started = time.monotonic()
    result = purge(timedelta(seconds=older_than_seconds))
    ended = time.monotonic()
    writer.stop()
    return {
        "batch_size": app_settings.TRACE_PURGE_BATCH_SIZE,
        "purge_seconds": ended - started,
        "events_deleted": result.events,
        "traces_deleted": result.traces,
        "expired_left": TraceEvent.objects.filter(timestamp__lt=result.cutoff).count(),
        "events_left": TraceEvent.objects.exclude(correlation_id="WRITER").count(),
        "traces_left": Trace.objects.count(),
        "writer_failed": writer.failed,
        "before": _latencies(writer.inserts, started - BASELINE_SECONDS, started),
        "during": _latencies(writer.inserts, started, ended),
    }


def worker_main() -> None:
    serve({}, {"purge": purge_while_writing})


def _writer_row(label: str, figures: dict[str, Any]) -> list[str]:
    latency = Summary(**figures["latency_ms"]).format(1) if figures["latency_ms"] else "none"
    return [
        label,
        f"{figures['inserts']:,} inserts, {figures['events_per_second']:,.0f} events/s; ms per insert "
        f"{latency}, p99 {figures['p99_ms'] or 0:.1f}; longest gap {figures['longest_gap_ms']:.0f} ms",
    ]


def run(quick: bool) -> Section:
    expired, recent = QUICK if quick else FULL
    config = CONFIGS["trace_store"]
    missing = config.missing()
    if missing:
        return Section.skipped("purge", TITLE, f"{', '.join(missing)} not importable")
    seed_started = time.monotonic()
    seed, newest, generated = _seed(expired, recent)
    seed_seconds = time.monotonic() - seed_started
    copy_started = time.monotonic()
    target = database.url(f"_purge_run_{expired}")
    _copy(seed, target)
    copy_seconds = time.monotonic() - copy_started
    # The cutoff falls between the expired part (a day past the retention) and the recent part.
    older_than = datetime.now(UTC) - (newest - RETENTION - timedelta(hours=12))
    with Worker(
        "benchmarks.trace_purge", {**edge_environment(config), "BENCH_DATABASE_URL": target}
    ) as worker:
        figures = worker.request("purge", older_than_seconds=older_than.total_seconds())

    seconds = figures["purge_seconds"]
    section = Section("purge", TITLE)
    section.columns = ["Step", "Measured"]
    section.rows = [
        [
            f"purge_traces: {expired:,} expired events, {recent:,} recent kept",
            f"{seconds:.1f} s ({figures['events_deleted'] / seconds:,.0f} events/s)",
        ],
        ["deleted", f"{figures['events_deleted']:,} events, {figures['traces_deleted']:,} traces"],
        [
            "left",
            f"{figures['expired_left']:,} expired events, {figures['events_left']:,} recent events, "
            f"{figures['traces_left']:,} traces",
        ],
        _writer_row(
            f"writer ({WRITER_BATCH} events per INSERT), {BASELINE_SECONDS:.0f} s before", figures["before"]
        ),
        _writer_row("writer during the purge", figures["during"]),
    ]
    stall = figures["during"]["latency_ms"]["max"] if figures["during"]["latency_ms"] else 0.0
    section.notes = [
        f"Batch of {figures['batch_size']:,} rows per DELETE (TRACE_PURGE_BATCH_SIZE), each its own "
        "transaction; one time slice of the timestamp index per statement.",
        (
            f"Seed generated with COPY in {seed_seconds:.0f} s"
            if generated
            else "Seed reused from an earlier run"
        )
        + f"; copied for this run in {copy_seconds:.1f} s."
        + (" Quick run: far fewer rows than the full run's 10,000,000." if quick else ""),
    ]
    if figures["writer_failed"]:
        section.notes.append(f"The writer failed: {figures['writer_failed']}")
    if not quick:
        section.checks = [
            Check(
                f"purge_traces removes {expired:,} expired events in under {TARGET_SECONDS:.0f} s",
                f"{seconds:.1f} s, {figures['expired_left']} expired left",
                seconds < TARGET_SECONDS and figures["expired_left"] == 0,
            ),
            Check(
                f"Writers keep inserting during the purge (no insert waits {STALL_MS:.0f} ms or more)",
                f"slowest insert {stall:.0f} ms, {figures['during']['inserts']:,} inserts",
                stall < STALL_MS and not figures["writer_failed"],
            ),
        ]
    section.data = {
        "expired": expired,
        "recent": recent,
        "seed_seconds": seed_seconds,
        "copy_seconds": copy_seconds,
        **figures,
    }
    return section


if __name__ == "__main__":
    worker_main()
