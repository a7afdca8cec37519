"""Idempotency: the added cost of an idempotent POST on PostgreSQL, and throughput with 16 clients.

In-process, one worker serves a trivial POST view bare and guarded by ``@idempotent``: a first request
(fresh key: claim, transaction, stored response), a replay (the same key again) and a guarded request
without a key (the guard lets it through). End to end, gunicorn (4 processes x 4 threads) takes POSTs
from 16 concurrent clients, every one with a fresh key. The records are deleted afterwards.
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
from benchmarks.isolation import Worker, serve
from benchmarks.report import Section
from benchmarks.server import Server
from benchmarks.stats import Summary, baseline_cells, paired_ratios

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
}
LABELS = {
    "bare": "POST, view not guarded (baseline)",
    "no_key": "guarded view, request without a key",
    "first": "guarded view, fresh key (claim + store)",
    "replay": "guarded view, repeated key (replay)",
}


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
        self.replay_key = f"{self.prefix}-replay"

    def post(self, variant: str) -> tuple[str, dict[str, str]]:
        path, keyed, fresh = VARIANTS[variant]
        key = None
        if keyed:
            self.counter += 1
            key = f"{self.prefix}-in-process-{self.counter}" if fresh else self.replay_key
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
        answers = {variant: self.post(variant) for variant in VARIANTS}
        replay_status, replay_headers = self.post("replay")
        for variant, (status, _headers) in answers.items():
            if not status.startswith("201"):
                raise RuntimeError(f"{variant}: expected 201, got {status}")
        if replay_headers.get("Idempotent-Replayed") != "true":
            raise RuntimeError(f"the repeated key was not replayed: {replay_status} {replay_headers}")
        return {variant: status for variant, (status, _headers) in answers.items()}

    def run(self, variant: str, requests: int) -> dict[str, int]:
        post = self.post
        gc.collect()
        started = time.perf_counter_ns()
        for _ in range(requests):
            post(variant)
        return {"ns": time.perf_counter_ns() - started}

    def clear(self) -> dict[str, int]:
        from tracing_app.idempotency.models import IdempotencyRecord

        deleted, _ = IdempotencyRecord.objects.filter(client_key__startswith=self.prefix).delete()
        return {"deleted": deleted}


def worker_main() -> None:
    worker = InProcess()
    serve(worker.probe(), {"run": worker.run, "clear": worker.clear})


def run(quick: bool) -> Section:
    rounds, requests = (2, 10) if quick else (30, 100)
    load_rounds, seconds = (1, 1) if quick else (5, 3)
    config = CONFIGS["idempotency"]
    section = Section("idempotency", TITLE)
    missing = config.missing()
    if missing:
        return Section.skipped("idempotency", TITLE, f"{', '.join(missing)} not importable")

    timings: dict[str, list[float]] = {key: [] for key in VARIANTS}
    throughput: dict[str, list[float]] = {"bare": [], "first": []}
    prefix = f"bench-{secrets.token_hex(6)}"
    environment = {**edge_environment(config), "BENCH_KEY_PREFIX": prefix}
    with Worker("benchmarks.idempotency_cost", environment) as worker:
        worker.ready()
        keys = list(VARIANTS)
        for key in keys:
            worker.request("run", variant=key, requests=requests)
        for round_index in range(rounds):
            shift = round_index % len(keys)
            for key in keys[shift:] + keys[:shift]:
                ns = worker.request("run", variant=key, requests=requests)["ns"]
                timings[key].append(ns / requests / 1000)
        with Server(config, workers=4, threads=4) as server:
            server.wait_ready(["/orders/", "/idempotent-orders/"])
            for _ in range(load_rounds):
                for key in throughput:
                    path, keyed, _fresh = VARIANTS[key]
                    result = load.generate(
                        server.url(path),
                        seconds,
                        CLIENTS,
                        body=BODY,
                        unique_header="Idempotency-Key" if keyed else None,
                        unique_prefix=f"{prefix}-load",
                    )
                    if result.failures:
                        raise RuntimeError(f"{path}: {result.failures} of {result.requests} requests failed")
                    throughput[key].append(result.per_second)
        deleted = worker.request("clear")["deleted"]

    section.columns = ["Request", "µs/request", "added µs", "ratio to baseline"]
    baseline = timings["bare"]
    for key, values in timings.items():
        section.rows.append([LABELS[key], *baseline_cells(values, baseline, 0)])
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
        "handler with the correlation-ID middleware; the view writes nothing, so 'added' is the "
        "idempotency layer's own cost (claim INSERT, transaction, stored response).",
        f"End to end: {load_rounds} round(s) of {seconds} s per kind, {CLIENTS} concurrent connections "
        f"({load.tool()}), every idempotent POST with a fresh key; the last rows are requests/second and "
        f"the ratio to the unguarded view. {deleted} records were created and deleted.",
    ]
    section.data = {"us_per_request": timings, "requests_per_second": throughput}
    return section


if __name__ == "__main__":
    worker_main()
