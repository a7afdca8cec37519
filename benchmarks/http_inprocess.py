"""HTTP edge, in-process: Django's WSGI handler called directly, thousands of requests per round.

Every configuration runs in its own worker process (see :mod:`benchmarks.isolation`); rounds are
interleaved across configurations and each figure is paired with the baseline's figure of the same round.
"""

from __future__ import annotations

import gc
import io
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from benchmarks.edge_configs import EDGE_CONFIGS, VIEWS, EdgeConfig, edge_environment
from benchmarks.isolation import Worker, serve
from benchmarks.report import Check, Section
from benchmarks.stats import baseline_cells, paired_differences

TITLE = "HTTP edge, in-process (µs per request)"
ID_ONLY_BUDGET_US = 5.0
# The libraries that, like tracing_app's ID-only layer, mint an ID per request and return it.
ID_ONLY_ANCHORS = {
    "django_guid": "django-guid",
    "django_cid": "django-cid",
    "log_request_id": "django-log-request-id",
}
# How far a sampled-out request may sit from an ID-only one, and what recording every request may add.
SAMPLED_OUT_MARGIN_US = 2.0
RECORDED_BUDGET_US = 25.0


def environ_for(view: str) -> dict[str, Any]:
    """A WSGI environ for ``GET /<view>/`` as a client would send it, with no incoming ID header."""
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": f"/{view}/",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_ACCEPT": "application/json",
        "HTTP_USER_AGENT": "tracing-app-benchmark",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def _call(application: Callable[..., Iterable[bytes]], environ: dict[str, Any]) -> tuple[str, dict, bytes]:
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        captured["status"], captured["headers"] = status, dict(headers)

    response = application(dict(environ), start_response)
    try:
        body = b"".join(response)
    finally:
        response.close()  # type: ignore[attr-defined]  (fires request_finished, as a server would)
    return captured["status"], captured["headers"], body


def probe(application: Callable[..., Iterable[bytes]], config: EdgeConfig, view: str) -> dict[str, Any]:
    """One real request, checked, so a broken configuration fails loudly instead of timing a 404."""
    status, headers, body = _call(application, environ_for(view))
    if not status.startswith("200"):
        raise RuntimeError(f"{config.key} /{view}/ answered {status}: {body[:300]!r}")
    if config.response_header and config.response_header not in headers:
        raise RuntimeError(f"{config.key} /{view}/ did not set {config.response_header}: {headers}")
    return {"status": status, "id_header": headers.get(config.response_header or ""), "body": body.decode()}


def time_requests(application: Callable[..., Iterable[bytes]], view: str, requests: int) -> dict[str, int]:
    environ = environ_for(view)

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        pass

    gc.collect()
    started = time.perf_counter_ns()
    for _ in range(requests):
        response = application(dict(environ), start_response)
        for _chunk in response:
            pass
        response.close()  # type: ignore[attr-defined]
    return {"ns": time.perf_counter_ns() - started}


def worker_main() -> None:
    from benchmarks.edge_configs import current
    from benchmarks.wsgi import application

    config = current()
    hello = {view: probe(application, config, view) for view in config.views}
    serve(hello, {"run": lambda view, requests: time_requests(application, view, requests)})


def run(quick: bool) -> Section:
    # Many short rounds: on a shared machine, neighbouring short rounds pair better than long ones.
    rounds, requests, warmup = (3, 100, 50) if quick else (60, 600, 1000)
    section = Section("http_inprocess", TITLE)
    configs = []
    for config in EDGE_CONFIGS.values():
        missing = config.missing()
        if missing:
            section.notes.append(f"{config.label}: skipped, {', '.join(missing)} not installed.")
        else:
            configs.append(config)

    workers = {c.key: Worker("benchmarks.http_inprocess", edge_environment(c)) for c in configs}
    try:
        probes = {key: worker.ready() for key, worker in workers.items()}
        for config in configs:
            for view in config.views:
                workers[config.key].request("run", view=view, requests=warmup)
        timings: dict[tuple[str, str], list[float]] = {}
        for round_index in range(rounds):
            # Rotate the order every round so no configuration always runs right after another.
            shift = round_index % len(configs)
            for config in configs[shift:] + configs[:shift]:
                for view in config.views:
                    ns = workers[config.key].request("run", view=view, requests=requests)["ns"]
                    timings.setdefault((config.key, view), []).append(ns / requests / 1000)
    finally:
        for worker in workers.values():
            worker.close()

    section.columns = ["View", "Configuration", "µs/request", "added µs", "ratio to baseline"]
    for view in VIEWS:
        baseline = timings[("baseline", view)]
        for config in configs:
            if view not in config.views:
                continue
            cells = baseline_cells(timings[(config.key, view)], baseline, 1)
            section.rows.append([view, config.label, *cells])
    section.checks = _checks(timings, configs)
    section.notes += [
        f"{rounds} rounds of {requests} requests per view and configuration (after {warmup} warm-up "
        "requests), rounds interleaved; 'added µs' and 'ratio' pair each round with the baseline's "
        "round. Each cell: median (min..max).",
        "Requests carry no incoming ID, so every middleware mints one. Each configuration runs in its "
        "own process with only its own app and middleware installed.",
    ]
    section.data = {
        "rounds": rounds,
        "requests_per_round": requests,
        "us_per_request": {f"{key}/{view}": values for (key, view), values in timings.items()},
        "probes": probes,
    }
    return section


def _checks(timings: dict[tuple[str, str], list[float]], configs: list[EdgeConfig]) -> list[Check]:
    checks = []
    keys = {c.key for c in configs}
    for view in VIEWS:
        ours = timings[("tracing_app", view)]
        added = paired_differences(ours, timings[("baseline", view)])
        checks.append(
            Check(
                f"ID-only middleware adds ≤ {ID_ONLY_BUDGET_US:.0f} µs/request ({view} view, in-process)",
                added.format(1, " µs"),
                added.median <= ID_ONLY_BUDGET_US,
            )
        )
        for anchor, label in ID_ONLY_ANCHORS.items():
            if anchor not in keys:
                continue
            versus = paired_differences(ours, timings[(anchor, view)])
            checks.append(
                Check(
                    f"ID-only middleware below {label} ({view} view, tracing_app minus {label})",
                    versus.format(1, " µs"),
                    versus.median < 0,
                )
            )
    checks += _recording_checks(timings, keys)
    return checks


def _recording_checks(timings: dict[tuple[str, str], list[float]], keys: set[str]) -> list[Check]:
    """The plain view's recording targets: sampled out costs what an ID costs, recording stays bounded."""
    checks = []
    id_only = timings[("tracing_app", "plain")]
    for key, label in (
        ("tracing_app_unsampled", "SAMPLE_RATE 0"),
        ("tracing_app_rate_5pct", "SAMPLE_RATE 0.05, 95% sampled out"),
    ):
        if key in keys:
            versus = paired_differences(timings[(key, "plain")], id_only)
            checks.append(
                Check(
                    f"Sampled-out request within {SAMPLED_OUT_MARGIN_US:.0f} µs of ID only ({label}, plain "
                    "view, recording minus ID only)",
                    versus.format(1, " µs"),
                    versus.median <= SAMPLED_OUT_MARGIN_US,
                )
            )
    if "tracing_app_sampled" in keys:
        added = paired_differences(timings[("tracing_app_sampled", "plain")], timings[("baseline", "plain")])
        checks.append(
            Check(
                f"Every request recorded to PostgreSQL adds ≤ {RECORDED_BUDGET_US:.0f} µs/request "
                "(plain view, writer thread in the same process)",
                added.format(1, " µs"),
                added.median <= RECORDED_BUDGET_US,
            )
        )
    return checks


if __name__ == "__main__":
    worker_main()
