"""Idempotency: the added cost of an idempotent POST on PostgreSQL, and throughput with 16 clients.

In-process, one worker serves a POST view that writes one row: bare (autocommit, one commit), guarded
by ``@idempotent`` in each mode: "transaction" (the claim commits with the row and the stored response)
and "lease" (the claim commits on its own first), and guarded by django-idempotency-key and
drf-idempotency on the same database (see :mod:`benchmarks.idempotency_settings`). Each gets a first
request (fresh key) and a replay (the same key again); a guarded request without a key is let through.
End to end, gunicorn (4 processes x 4 threads) takes POSTs from 16 concurrent clients, every one with a
fresh key. The records and rows are deleted afterwards.
"""

from __future__ import annotations

import gc
import io
import os
import secrets
import sys
import time
from typing import Any

from benchmarks import load
from benchmarks.edge_configs import CONFIGS, edge_environment
from benchmarks.idempotency_statements import KINDS as STATEMENT_KINDS
from benchmarks.idempotency_statements import Statements
from benchmarks.isolation import Worker, serve
from benchmarks.report import Check, Section
from benchmarks.server import Server
from benchmarks.stats import Summary, baseline_cells, paired_differences, paired_ratios

TITLE = "Idempotency (PostgreSQL)"
BODY = b'{"sku": "A-1", "quantity": 2}'
KEY_META = "HTTP_IDEMPOTENCY_KEY"
CLIENTS = 16
# Variant -> (path, whether the request carries a key, whether the key is fresh for every request).
VARIANTS = {
    "bare": ("/orders/", False, False),
    "no_key": ("/idempotent-orders/", False, False),
    "first": ("/idempotent-orders/", True, True),
    "replay": ("/idempotent-orders/", True, False),
    "lease_first": ("/lease-orders/", True, True),
    "lease_replay": ("/lease-orders/", True, False),
}
# The same view under the other idempotency libraries: variant -> (library, path, key fresh every time).
ANCHOR_VARIANTS = {
    "idempotency_key_first": ("django-idempotency-key", "/idempotency-key-orders/", True),
    "idempotency_key_replay": ("django-idempotency-key", "/idempotency-key-orders/", False),
    "drf_idempotency_first": ("drf-idempotency", "/drf-idempotency-orders/", True),
    "drf_idempotency_replay": ("drf-idempotency", "/drf-idempotency-orders/", False),
}
LABELS = {
    "bare": "POST writing one row, view not guarded (baseline)",
    "no_key": "guarded view, request without a key",
    "first": "transaction mode, fresh key (one commit)",
    "replay": "transaction mode, repeated key (replay)",
    "lease_first": "lease mode, fresh key (claim commit + view commit)",
    "lease_replay": "lease mode, repeated key (replay)",
    "idempotency_key_first": "django-idempotency-key, fresh key",
    "idempotency_key_replay": "django-idempotency-key, repeated key (replay)",
    "drf_idempotency_first": "drf-idempotency, fresh key",
    "drf_idempotency_replay": "drf-idempotency, repeated key (replay)",
}
# The targets: a fresh key adds at most this over the bare view; a replay costs no more than the bare view.
FIRST_BUDGET_US = 500.0


def _environ(path: str, key: str | None) -> dict[str, Any]:
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(BODY)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(BODY),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if key is not None:
        environ[KEY_META] = key
    return environ


class InProcess:
    """The worker side: the benchmark WSGI application, POSTed to directly.

    Every key this run sends starts with ``BENCH_KEY_PREFIX``, so :meth:`clear` deletes this run's
    records and nobody else's.
    """

    def __init__(self) -> None:
        from benchmarks.wsgi import application

        self.application = application
        self.prefix = os.environ["BENCH_KEY_PREFIX"]
        self.counter = 0
        from benchmarks.idempotency_views import create_table

        create_table()
        self.anchors, self.anchor_errors = _prepare_anchors()
        self.floor = Statements(self.prefix)
        self.variants = {
            **VARIANTS,
            **{
                variant: (path, True, fresh)
                for variant, (library, path, fresh) in ANCHOR_VARIANTS.items()
                if library in self.anchors
            },
        }

    def post(self, variant: str) -> tuple[str, dict[str, str]]:
        path, keyed, fresh = self.variants[variant]
        key = None
        if keyed:
            self.counter += 1
            # Letters, digits and dashes only: every library accepts them.
            name = f"in-process-{self.counter}" if fresh else f"replay-{path.strip('/')}"
            key = f"{self.prefix}-{name}"
        captured: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            captured["status"], captured["headers"] = status, dict(headers)

        response = self.application(_environ(path, key), start_response)
        for _chunk in response:
            pass
        response.close()
        return captured["status"], captured["headers"]

    def probe(self) -> dict[str, Any]:
        self.clear()
        answers = {variant: self.post(variant) for variant in self.variants}
        for variant, (status, _headers) in answers.items():
            if not status.startswith("201"):
                raise RuntimeError(f"{variant}: expected 201, got {status}")
        for variant in ("replay", "lease_replay", "drf_idempotency_replay"):
            if variant not in self.variants:
                continue
            replay_status, replay_headers = self.post(variant)
            if replay_headers.get("Idempotent-Replayed") != "true":
                raise RuntimeError(f"{variant}: the key was not replayed: {replay_status} {replay_headers}")
        if "idempotency_key_replay" in self.variants:
            # django-idempotency-key marks no replay: a replay is a POST that writes no row.
            from benchmarks.idempotency_views import delete_orders

            delete_orders()
            self.post("idempotency_key_replay")
            if delete_orders():
                raise RuntimeError("idempotency_key_replay: the view ran again instead of a replay")
        return {
            "status": {variant: status for variant, (status, _headers) in answers.items()},
            "variants": list(self.variants),
            "anchor_errors": self.anchor_errors,
        }

    def run(self, variant: str, requests: int) -> dict[str, int]:
        post = self.post
        gc.collect()
        started = time.perf_counter_ns()
        for _ in range(requests):
            post(variant)
        return {"ns": time.perf_counter_ns() - started}

    def round_trip(self, statements: int) -> dict[str, int]:
        """Time ``statements`` round trips to the database (``SELECT 1``), the unit the modes differ by."""
        from django.db import connection

        with connection.cursor() as cursor:
            started = time.perf_counter_ns()
            for _ in range(statements):
                cursor.execute("SELECT 1")
            return {"ns": time.perf_counter_ns() - started}

    def statements(self, kind: str, requests: int) -> dict[str, int]:
        """Time ``requests`` rounds of one kind of :mod:`benchmarks.idempotency_statements`."""
        return {"ns": self.floor.run(kind, requests)}

    def clear(self) -> dict[str, int]:
        from benchmarks.idempotency_views import delete_orders
        from tracing_app.idempotency.models import IdempotencyRecord

        deleted, _ = IdempotencyRecord.objects.filter(client_key__startswith=self.prefix).delete()
        deleted += self.floor.clear()
        if "drf-idempotency" in self.anchors:
            from drf_idempotency.models import IdempotencyRecord as DrfRecord

            deleted += DrfRecord.objects.filter(key__startswith=self.prefix).delete()[0]
        if "django-idempotency-key" in self.anchors:
            from django.core.cache import caches

            caches["idempotency_key"].clear()
        return {"deleted": deleted, "orders": delete_orders()}


def _prepare_anchors() -> tuple[list[str], dict[str, str]]:
    """The other libraries that are installed and work here, with their tables created; and why any
    other is left out."""
    from django.conf import settings
    from django.core.management import call_command

    usable: list[str] = []
    errors: dict[str, str] = {}
    for library, installed in settings.ANCHORS.items():
        if not installed:
            errors[library] = "not installed (install the bench dependency group)"
            continue
        try:
            if library == "drf-idempotency":
                call_command("migrate", "drf_idempotency", verbosity=0)
            else:
                call_command("createcachetable", "bench_idempotency_key_cache", verbosity=0)
        except Exception as exc:  # a library that cannot set up here is reported, not fatal
            errors[library] = f"{type(exc).__name__}: {exc}"
            continue
        usable.append(library)
    return usable, errors


def worker_main() -> None:
    worker = InProcess()
    serve(
        worker.probe(),
        {
            "run": worker.run,
            "round_trip": worker.round_trip,
            "statements": worker.statements,
            "clear": worker.clear,
        },
    )


def run(quick: bool) -> Section:
    rounds, requests = (2, 10) if quick else (30, 100)
    load_rounds, seconds = (1, 1) if quick else (5, 3)
    config = CONFIGS["idempotency"]
    section = Section("idempotency", TITLE)
    missing = config.missing()
    if missing:
        return Section.skipped("idempotency", TITLE, f"{', '.join(missing)} not importable")

    round_trips: list[float] = []
    statements: dict[str, list[float]] = {kind: [] for kind in STATEMENT_KINDS}
    throughput: dict[str, list[float]] = {"bare": [], "first": [], "lease_first": []}
    prefix = f"bench-{secrets.token_hex(6)}"
    environment = {
        **edge_environment(config),
        "BENCH_KEY_PREFIX": prefix,
        "DJANGO_SETTINGS_MODULE": "benchmarks.idempotency_settings",
    }
    with Worker("benchmarks.idempotency_cost", environment) as worker:
        probe = worker.ready()
        keys = probe["variants"]
        timings: dict[str, list[float]] = {key: [] for key in keys}
        for key in keys:
            worker.request("run", variant=key, requests=requests)
        for round_index in range(rounds):
            shift = round_index % len(keys)
            for key in keys[shift:] + keys[:shift]:
                ns = worker.request("run", variant=key, requests=requests)["ns"]
                timings[key].append(ns / requests / 1000)
            round_trips.append(worker.request("round_trip", statements=requests)["ns"] / requests / 1000)
            for kind in STATEMENT_KINDS:
                ns = worker.request("statements", kind=kind, requests=requests)["ns"]
                statements[kind].append(ns / requests / 1000)
        with Server(config, workers=4, threads=4) as server:
            server.wait_ready(["/orders/", "/idempotent-orders/", "/lease-orders/"])
            for _ in range(load_rounds):
                for key in throughput:
                    path, keyed, _fresh = VARIANTS[key]
                    result = load.generate(
                        server.url(path),
                        seconds,
                        CLIENTS,
                        body=BODY,
                        unique_header="Idempotency-Key" if keyed else None,
                        unique_prefix=f"{prefix}-load-{key}",
                    )
                    if result.failures:
                        raise RuntimeError(f"{path}: {result.failures} of {result.requests} requests failed")
                    throughput[key].append(result.per_second)
        cleared = worker.request("clear")

    section.columns = ["Request", "µs/request", "added µs", "ratio to baseline"]
    baseline = timings["bare"]
    for key, values in timings.items():
        section.rows.append([LABELS[key], *baseline_cells(values, baseline, 0)])
    for kind, label in STATEMENT_KINDS.items():
        cells = baseline_cells(statements[kind], statements["bare"], 0)
        section.rows.append([f"statements alone (psycopg): {label}", *cells])
    for key, rates in throughput.items():
        ratio = paired_ratios(rates, throughput["bare"]) if key != "bare" else None
        section.rows.append(
            [
                f"{CLIENTS} clients, gunicorn 4x4 threads: {LABELS[key]}",
                f"{Summary.of(rates).format(0)} req/s",
                "",
                ratio.format(2) if ratio else "1.00",
            ]
        )
    section.notes = [
        f"In-process: {rounds} rounds of {requests} POSTs per request kind, interleaved, through the WSGI "
        "handler with the correlation-ID middleware; every view that runs inserts one row, so 'added' "
        "is what the idempotency layer costs a real write (the bare view commits once too).",
        "Lease mode is the path every guarded view took before transaction mode: its rows are the "
        "before, the transaction-mode rows the after.",
        f"One database round trip (SELECT 1) took {Summary.of(round_trips).format(0)} µs in this run. "
        "Against the bare view's one statement, a fresh key in transaction mode makes four more round "
        "trips (the replay lookup, BEGIN, the claim, the completion sent with COMMIT) and still one "
        "commit; lease mode makes four more and two commits; a replay is one statement whose commit "
        "waits for no disk flush.",
        "The 'statements alone' rows send what a fresh key wraps the view's INSERT in through the "
        "worker's psycopg connection, with no Django cursor, atomic() or guard logic around it, paired "
        "with that INSERT alone in autocommit (the first of those rows): the floor of a guard of that "
        "shape on this machine and database.",
        "django-idempotency-key keeps responses (pickled) in Django's database cache on the same "
        "database, behind its in-process lock (ExemptIdempotencyKeyMiddleware, @idempotency_key); "
        "drf-idempotency keeps records in its own table through its database backend (@idempotent). "
        "Neither runs the view in a transaction with its record.",
        *(
            f"{library}: not measured: {reason}."
            for library, reason in sorted(probe["anchor_errors"].items())
        ),
        f"End to end: {load_rounds} round(s) of {seconds} s per kind, {CLIENTS} concurrent connections "
        f"({load.tool()}), every idempotent POST with a fresh key; the last rows are requests/second and "
        f"the ratio to the unguarded view. {cleared['deleted']} records and {cleared['orders']} rows were "
        "created and deleted.",
    ]
    section.checks = _checks(timings)
    missing = sorted(probe["anchor_errors"].items())
    section.rows.extend([library, f"not measured: {reason}", "", ""] for library, reason in missing)
    section.data = {
        "us_per_request": timings,
        "round_trip_us": round_trips,
        "statements_us": statements,
        "requests_per_second": throughput,
    }
    return section


def _checks(timings: dict[str, list[float]]) -> list[Check]:
    first = paired_differences(timings["first"], timings["bare"])
    replay = paired_differences(timings["replay"], timings["bare"])
    anchors = [
        Check(
            f"{LABELS[variant]}: adds ≤ {FIRST_BUDGET_US / 1000:.1f} ms over the same unguarded view "
            "(anchor, same view and database)",
            paired_differences(timings[variant], timings["bare"]).format(0, " µs"),
            paired_differences(timings[variant], timings["bare"]).median <= FIRST_BUDGET_US,
        )
        for variant in ("idempotency_key_first", "drf_idempotency_first")
        if variant in timings
    ]
    return [*_tracing_app_checks(first, replay), *anchors]


def _tracing_app_checks(first: Summary, replay: Summary) -> list[Check]:
    return [
        Check(
            f"idempotent POST, fresh key, adds ≤ {FIRST_BUDGET_US / 1000:.1f} ms over the same unguarded "
            "view writing one row (transaction mode, PostgreSQL)",
            first.format(0, " µs"),
            first.median <= FIRST_BUDGET_US,
        ),
        Check(
            "idempotent replay costs ≤ the unguarded view's own time (replay minus unguarded view, "
            "transaction mode)",
            replay.format(0, " µs"),
            replay.median <= 0,
        ),
    ]


if __name__ == "__main__":
    worker_main()
