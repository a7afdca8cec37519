"""Trace store: showing one transaction among a million stored events, on PostgreSQL.

Events are generated on the server (``INSERT ... SELECT generate_series``): ten per transaction, shaped
like a checkout request that publishes two tasks, one of which fails. The target transaction sits in the
middle of the table. The generated rows are kept in the benchmark database and reused by later runs of
the same size; the events a sampled HTTP configuration recorded meanwhile are deleted first.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from benchmarks.edge_configs import CONFIGS, edge_environment
from benchmarks.isolation import Worker, serve
from benchmarks.report import Section
from benchmarks.stats import Summary

TITLE = "Trace store (ms to show one transaction)"
PREFIX = "TB"
EVENTS_PER_TRANSACTION = 10

_GENERATE_EVENTS = """
INSERT INTO {events} (correlation_id, hop_id, causation_id, sequence, kind, name, status, duration_ms,
                      error, timestamp, host, pid, trace_id, span_id, attributes)
SELECT
  '{prefix}' || lpad(t::text, 24, '0'),
  CASE WHEN e < 4 THEN '{prefix}' WHEN e < 6 THEN 'T1' ELSE 'T2' END || lpad(t::text, 24, '0'),
  CASE WHEN e < 4 THEN '' ELSE '{prefix}' || lpad(t::text, 24, '0') END,
  e + 1,
  (ARRAY['request.started', 'task.published', 'task.published', 'request.finished', 'task.started',
         'task.succeeded', 'task.started', 'task.failed', 'log', 'error'])[e + 1],
  (ARRAY['checkout', 'orders.charge', 'orders.email', 'checkout', 'orders.charge', 'orders.charge',
         'orders.email', 'orders.email', 'orders.email', 'orders.email'])[e + 1],
  (ARRAY['', '', '', '201', '', 'SUCCESS', '', 'FAILURE', 'WARNING', ''])[e + 1],
  CASE WHEN e IN (3, 5, 7) THEN 5 + t % 200 END,
  e IN (7, 9),
  now() - ({transactions} - t) * interval '10 milliseconds' + e * interval '1 millisecond',
  'bench-host',
  4242,
  '',
  '',
  CASE WHEN e = 0 THEN jsonb_build_object('method', 'POST', 'path', '/api/orders/', 'order_id', t)
       ELSE '{{}}'::jsonb END
FROM generate_series(0, {count} - 1) AS g, LATERAL (SELECT g / 10 AS t, g % 10 AS e) AS parts
"""

# The figures the recorder would have merged for those ten events; one transaction in ten is a single
# GET (a poll), one in three has a different entry point, so every filter has something to skip.
_GENERATE_TRACES = """
INSERT INTO {traces} (correlation_id, started_at, ended_at, duration_ms, outcome, entry_point, entry_hop,
                      entry_sequence, entry_method, entry_status, single_read, events, requests, tasks,
                      retries, errors, compensations, open_hops, queued)
SELECT '{prefix}' || lpad(t::text, 24, '0'),
       now() - ({transactions} - t) * interval '10 milliseconds',
       now() - ({transactions} - t) * interval '10 milliseconds' + interval '9 milliseconds',
       9 + t % 5000,
       CASE WHEN t % 10 = 0 THEN 'ok' ELSE 'failed' END,
       CASE WHEN t % 3 = 0 THEN 'orders' ELSE 'checkout' END,
       '{prefix}' || lpad(t::text, 24, '0'),
       1,
       CASE WHEN t % 10 = 0 THEN 'GET' ELSE 'POST' END,
       CASE WHEN t % 10 = 0 THEN '200' ELSE '201' END,
       t % 10 = 0,
       10, 1, 2, 0,
       CASE WHEN t % 10 = 0 THEN 0 ELSE 2 END,
       0, 0, 0
FROM generate_series(0, {transactions} - 1) AS t
"""


def correlation_id(transaction: int) -> str:
    return PREFIX + str(transaction).zfill(24)


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

        tables = {"events": TraceEvent._meta.db_table, "traces": Trace._meta.db_table, "prefix": PREFIX}
        transactions = events // EVENTS_PER_TRANSACTION
        with connection.cursor() as cursor:
            # Events recorded by other sections (a sampled HTTP configuration) are not part of this store.
            cursor.execute(f"DELETE FROM {tables['events']} WHERE correlation_id NOT LIKE '{PREFIX}%'")
            cursor.execute(f"DELETE FROM {tables['traces']} WHERE correlation_id NOT LIKE '{PREFIX}%'")
            cursor.execute(f"SELECT count(*) FROM {tables['events']}")
            (stored,) = cursor.fetchone()
            # Rows generated before the trace figures existed are generated again.
            cursor.execute(f"SELECT count(*) FROM {tables['traces']} WHERE events = 0")
            (unfigured,) = cursor.fetchone()
            if stored == events and not unfigured:
                return {"events": stored, "transactions": transactions, "generated_seconds": None}
            started = time.monotonic()
            cursor.execute(f"TRUNCATE {tables['events']}, {tables['traces']}")
            cursor.execute(_GENERATE_EVENTS.format(**tables, transactions=transactions, count=events))
            cursor.execute(_GENERATE_TRACES.format(**tables, transactions=transactions))
            cursor.execute(f"ANALYZE {tables['events']}")
            cursor.execute(f"ANALYZE {tables['traces']}")
        return {
            "events": events,
            "transactions": transactions,
            "generated_seconds": time.monotonic() - started,
        }

    def measure(self, transaction: int, rounds: int) -> dict[str, Any]:
        from django.urls import reverse

        from tracing_app.traces import queries, timeline
        from tracing_app.traces.models import TraceEvent

        target = correlation_id(transaction)
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
            "search_task_id": {"q": "T1" + target[len(PREFIX) :]},
            "search_text": {"q": "orders.charge"},
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
    "search_text": "admin free-text search (a task name)",
}


def run(quick: bool) -> Section:
    events, rounds = (20_000, 5) if quick else (1_000_000, 30)
    config = CONFIGS["trace_store"]
    missing = config.missing()
    if missing:
        return Section.skipped("trace_store", TITLE, f"{', '.join(missing)} not importable")
    with Worker("benchmarks.trace_store", edge_environment(config)) as worker:
        filled = worker.request("fill", events=events)
        transactions = filled["transactions"]
        result = worker.request("measure", transaction=transactions // 2, rounds=rounds)

    section = Section("trace_store", TITLE)
    section.columns = ["Step", "ms"]
    section.rows.append(
        ["admin trace page, first render in a fresh process", f"{result['first_page_ms']:.1f}"]
    )
    for key, values in result["timings_ms"].items():
        section.rows.append([LABELS[key], Summary.of(values).format(2)])
    plan = result["plan"]
    generated = filled["generated_seconds"]
    section.notes = [
        f"{filled['events']:,} events in {transactions:,} transactions"
        + (" (quick run: far fewer rows than the full run's 1,000,000)" if quick else "")
        + "; "
        + (f"generated in {generated:.1f} s" if generated is not None else "reused from an earlier run")
        + f". Target {result['target']} ({result['events_shown']} events), {rounds} rounds per step.",
        f"Query plan of the events query: {', '.join(_indexes(plan['Plan'])) or plan['Plan']['Node Type']}, "
        f"{plan['Execution Time']:.3f} ms inside PostgreSQL.",
        "Pages are rendered through Django's test client as a logged-in superuser, session and "
        "permission checks included.",
    ]
    section.data = {**filled, **result}
    return section


if __name__ == "__main__":
    worker_main()
