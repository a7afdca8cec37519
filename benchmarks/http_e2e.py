"""HTTP edge, end to end: gunicorn on loopback, one sync worker per configuration, bounded load.

Servers for all configurations start together and idle while another is measured; rounds are interleaved
and each round is paired with the baseline's round of the same view.
"""

from __future__ import annotations

from benchmarks import load
from benchmarks.edge_configs import CONFIGS, VIEWS
from benchmarks.report import Section
from benchmarks.server import Server
from benchmarks.stats import Summary, baseline_cells

TITLE = "HTTP edge, end to end (gunicorn on loopback)"
CONFIG_KEYS = ("baseline", "tracing_app", "django_guid")
CONNECTIONS = 4


def run(quick: bool) -> Section:
    rounds, seconds, warmup = (1, 1, 0) if quick else (10, 2, 1)
    keys = [key for key in CONFIG_KEYS if not CONFIGS[key].missing()]
    servers = {key: Server(CONFIGS[key]) for key in keys}
    per_second: dict[tuple[str, str], list[float]] = {}
    try:
        for server in servers.values():
            server.wait_ready([f"/{view}/" for view in VIEWS])
        if warmup:
            for server in servers.values():
                for view in VIEWS:
                    load.generate(server.url(f"/{view}/"), warmup, CONNECTIONS)
        for round_index in range(rounds):
            shift = round_index % len(keys)
            for key in keys[shift:] + keys[:shift]:
                for view in VIEWS:
                    result = load.generate(servers[key].url(f"/{view}/"), seconds, CONNECTIONS)
                    if result.failures:
                        raise RuntimeError(f"{key} /{view}/: {result.failures} failed requests under load")
                    per_second.setdefault((key, view), []).append(result.per_second)
    finally:
        for server in servers.values():
            server.stop()

    section = Section("http_e2e", TITLE)
    section.columns = ["View", "Configuration", "requests/s", "µs/request", "added µs", "ratio to baseline"]
    micros = {pair: [1e6 / rate for rate in rates] for pair, rates in per_second.items()}
    for view in VIEWS:
        baseline = micros[("baseline", view)]
        for key in keys:
            section.rows.append(
                [
                    view,
                    CONFIGS[key].label,
                    Summary.of(per_second[(key, view)]).format(0),
                    *baseline_cells(micros[(key, view)], baseline, 1),
                ]
            )
    section.notes = [
        f"Load: {load.tool()}, {CONNECTIONS} connections, {seconds} s per round, {rounds} round(s) per "
        "view and configuration, interleaved. gunicorn: 1 sync worker (a new connection per request), "
        "127.0.0.1 only.",
        "µs/request is 1 / throughput of the single worker: the server's whole cost per request, "
        "including accepting the connection and parsing HTTP, so middleware is a small share of it.",
    ]
    section.data = {
        "rounds": rounds,
        "seconds": seconds,
        "tool": load.tool(),
        "requests_per_second": {f"{key}/{view}": rates for (key, view), rates in per_second.items()},
    }
    return section
