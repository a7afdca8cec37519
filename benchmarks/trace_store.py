"""Trace store: showing one transaction, listing, filtering and searching among 1,000,000 and
10,000,000 stored events, on PostgreSQL.

The events are generated with COPY (:mod:`benchmarks.trace_rows`): ten per transaction, the target
transaction in the middle of the table. Each size lives in its own database (the 10,000,000 events in
``<benchmark database>_10m``) and is reused by later runs; the events a sampled HTTP configuration
recorded meanwhile are deleted first. The 10,000,000 case runs in the full run only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from benchmarks import database, trace_rows
from benchmarks.edge_configs import CONFIGS, edge_environment
from benchmarks.isolation import Worker, serve
from benchmarks.report import Check, Section
from benchmarks.stats import Summary

TITLE = "Trace store (ms to show one transaction, a list or a search)"
# Events stored -> the suffix of the database holding them.
SIZES = {1_000_000: "", 10_000_000: "_10m"}
QUICK_SIZE = 20_000
TARGET_MS = 50.0


class Store:
    """The worker side: fills the store, then renders the admin's pages through Django's test client."""

    def __init__(self) -> None:
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.test import Client

        user, _ = get_user_model().objects.get_or_create(
            username="tracing-benchmark", defaults={"is_staff": True, "is_superuser": True}
        )
        self.client = Client()
        self.client.force_login(user)

    def fill(self, events: int) -> dict[str, Any]:
        from django.db import connection

        from tracing_app.traces.models import Trace, TraceEvent

        connection.ensure_connection()
        generated = trace_rows.fill(
            connection.connection, TraceEvent._meta.db_table, Trace._meta.db_table, events
        )
        return {
            "events": events,
            "transactions": events // trace_rows.EVENTS_PER_TRANSACTION,
            "generated_seconds": generated,
        }

    def measure(self, transaction: int, rounds: int) -> dict[str, Any]:
        from django.urls import reverse

        from tracing_app.traces import queries, timeline
        from tracing_app.traces.models import TraceEvent

        target = trace_rows.correlation_id(transaction)
        detail = reverse("admin:tracing_app_trace_detail", args=[target])
        changelist = reverse("admin:tracing_app_trace_changelist")
        fetched, _ = queries.events_of(target)
        since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
        lists = {
            "list": {},
            "list_errors": {"errors": "1"},
            "list_outcome": {"outcome": "ok"},
            "list_entry": {"entry": "orders"},
            "list_duration": {"min_ms": "4000", "max_ms": "4500"},
            "list_time": {"since": since},
            "list_reads": {"reads": "1"},
        }
        searches = {
            "search": {"q": f"order_id={transaction}"},
            "search_id": {"q": target.lower()},
            "search_task_id": {"q": "T1" + target[len(trace_rows.PREFIX) :]},
            "search_text": {"q": "orders.charge"},
            "search_text_rare": {"q": trace_rows.RARE_ERROR},
        }
        steps: dict[str, Callable[[], object]] = {
            "query": lambda: queries.events_of(target),
            "timeline": lambda: timeline.build(target, fetched),
            "page": lambda: self._get(detail),
        }
        for key, params in {**lists, **searches}.items():
            steps[key] = partial(self._get, changelist, params, redirect_ok=key == "search_id")
        started = time.perf_counter_ns()
        self._get(detail)
        first_page = (time.perf_counter_ns() - started) / 1e6
        timings: dict[str, list[float]] = {key: [] for key in steps}
        for _ in range(rounds):
            for key, step in steps.items():
                started = time.perf_counter_ns()
                step()
                timings[key].append((time.perf_counter_ns() - started) / 1e6)
        plan = json.loads(
            TraceEvent.objects.filter(correlation_id=target)
            .order_by("sequence", "id")
            .explain(format="json", analyze=True)
        )[0]
        return {
            "target": target,
            "events_shown": len(fetched),
            "first_page_ms": first_page,
            "timings_ms": timings,
            "plan": plan,
        }

    def _get(self, path: str, query: dict[str, str] | None = None, redirect_ok: bool = False) -> None:
        response = self.client.get(path, query or {})
        if response.status_code != 200 and not (redirect_ok and response.status_code == 302):
            raise RuntimeError(f"{path} {query or ''} answered {response.status_code}")


def worker_main() -> None:
    store = Store()
    serve({}, {"fill": store.fill, "measure": store.measure})


def _indexes(node: dict[str, Any]) -> Iterator[str]:
    if "Index Name" in node:
        yield f"{node['Node Type']} using {node['Index Name']}"
    for child in node.get("Plans", ()):
        yield from _indexes(child)


LABELS = {
    "query": "the transaction's events (one indexed query)",
    "timeline": "causal tree and timeline built from those events (Python)",
    "page": "admin trace page, full render",
    "list": "admin list of recent transactions (page of 50, single reads hidden)",
    "list_errors": "… with errors",
    "list_outcome": "… filtered by outcome",
    "list_entry": "… filtered by entry point",
    "list_duration": "… filtered by duration range",
    "list_time": "… filtered by time range",
    "list_reads": "… single reads shown",
    "search": "admin search by attribute (order_id=…)",
    "search_id": "admin search by a lowercase correlation ID (redirect)",
    "search_task_id": "admin search by a task ID",
    "search_text": "admin free-text search (a task name in 3 events of 10)",
    "search_text_rare": "admin free-text search (an error in 1 transaction of 1000)",
}
# Steps the 50 ms target applies to: what a person waits for in the admin.
TARGETED = [key for key in LABELS if key == "page" or key.startswith(("list", "search"))]


def _measure(events: int, rounds: int) -> tuple[dict[str, Any], dict[str, Any]]:
    config = CONFIGS["trace_store"]
    environment = edge_environment(config)
    if SIZES.get(events):
        environment["BENCH_DATABASE_URL"] = database.prepare(SIZES[events])
    with Worker("benchmarks.trace_store", environment) as worker:
        filled = worker.request("fill", events=events)
        result = worker.request("measure", transaction=filled["transactions"] // 2, rounds=rounds)
    return filled, result


def run(quick: bool) -> Section:
    sizes, rounds = ([QUICK_SIZE], 5) if quick else (list(SIZES), 30)
    missing = CONFIGS["trace_store"].missing()
    if missing:
        return Section.skipped("trace_store", TITLE, f"{', '.join(missing)} not importable")
    measured = {events: _measure(events, rounds) for events in sizes}

    section = Section("trace_store", TITLE)
    section.columns = ["Step", *(f"{events:,} events" for events in sizes)]
    section.rows.append(
        [
            "admin trace page, first render in a fresh process",
            *(f"{result['first_page_ms']:.1f}" for _, result in measured.values()),
        ]
    )
    summaries = {
        events: {key: Summary.of(values) for key, values in result["timings_ms"].items()}
        for events, (_, result) in measured.items()
    }
    for key, label in LABELS.items():
        section.rows.append([label, *(summaries[events][key].format(2) for events in sizes)])
    for events in sizes:
        filled, result = measured[events]
        plan = result["plan"]
        generated = filled["generated_seconds"]
        section.notes.append(
            f"{filled['events']:,} events in {filled['transactions']:,} transactions"
            + (" (quick run: far fewer rows than the full run's)" if quick else "")
            + "; "
            + (
                f"generated with COPY in {generated:.1f} s"
                if generated is not None
                else "reused from an earlier run"
            )
            + f". Target {result['target']} ({result['events_shown']} events), {rounds} rounds per step. "
            f"Events query plan: {', '.join(_indexes(plan['Plan'])) or plan['Plan']['Node Type']}, "
            f"{plan['Execution Time']:.3f} ms inside PostgreSQL."
        )
        if not quick:
            worst = max(TARGETED, key=lambda key: summaries[events][key].median)
            section.checks.append(
                Check(
                    f"Admin list, filters, search and trace page under {TARGET_MS:.0f} ms (median) at "
                    f"{events:,} events",
                    f"slowest: {LABELS[worst].lstrip('… ')} {summaries[events][worst].format(1, ' ms')}",
                    summaries[events][worst].median < TARGET_MS,
                )
            )
    section.notes.append(
        "Pages are rendered through Django's test client as a logged-in superuser, session and "
        "permission checks included."
    )
    section.data = {f"{events}": {**filled, **result} for events, (filled, result) in measured.items()}
    return section


if __name__ == "__main__":
    worker_main()
