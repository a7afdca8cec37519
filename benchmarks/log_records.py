"""Logging: cost per record of tracing_app's filter and JSON formatter, against plain logging and the
filters the other correlation-ID libraries ship.

Every setup is a logger with one handler writing to a stream that discards, so the figure is the cost of
creating, filtering and formatting a record; all run inside an active transaction of every library.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.edge_configs import CONFIGS
from benchmarks.isolation import Worker, serve
from benchmarks.report import Section
from benchmarks.stats import baseline_cells

TITLE = "Logging (µs per record)"
TEXT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class DiscardingStream:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


@dataclass(frozen=True)
class Setup:
    key: str
    label: str
    filter_factory: Callable[[], logging.Filter] | None
    formatter_factory: Callable[[], logging.Formatter]
    requires: str | None = None


def _text_formatter(field: str) -> Callable[[], logging.Formatter]:
    """The same text format with the library's ID field in front of the message."""
    return lambda: logging.Formatter(TEXT.replace("%(message)s", f"[%({field})s] %(message)s"))


def _setups() -> list[Setup]:
    from tracing_app.logs import CorrelationIdFilter, JsonFormatter

    setups = [
        Setup("plain", "plain logging, text (baseline)", None, lambda: logging.Formatter(TEXT)),
        Setup(
            "tracing_text", "tracing_app filter, text", CorrelationIdFilter, _text_formatter("correlation_id")
        ),
        Setup("tracing_json", "tracing_app filter + JsonFormatter", CorrelationIdFilter, JsonFormatter),
    ]
    if not CONFIGS["django_guid"].missing():
        from django_guid.log_filters import CorrelationId

        setups.append(
            Setup("django_guid", "django-guid filter, text", CorrelationId, _text_formatter("correlation_id"))
        )
    if not CONFIGS["log_request_id"].missing():
        from log_request_id.filters import RequestIDFilter

        setups.append(
            Setup(
                "log_request_id",
                "django-log-request-id filter, text",
                RequestIDFilter,
                _text_formatter("request_id"),
            )
        )
    if not CONFIGS["django_cid"].missing():
        from cid.log import CidContextFilter

        setups.append(
            Setup("django_cid", "django-cid filter, text", CidContextFilter, _text_formatter("cid"))
        )
    return setups


def _logger(setup: Setup) -> logging.Logger:
    logger = logging.getLogger(f"benchmarks.log_records.{setup.key}")
    logger.handlers.clear()
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = logging.StreamHandler(DiscardingStream())
    handler.setFormatter(setup.formatter_factory())
    if setup.filter_factory is not None:
        handler.addFilter(setup.filter_factory())
    logger.addHandler(handler)
    return logger


def _bind_every_library() -> None:
    """Make a transaction current in each library, as inside a request, and leave it for the process."""
    import uuid

    from tracing_app.context import TraceContext, activate
    from tracing_app.ids import new_id

    activate(TraceContext(new_id(), hop_id=new_id(), causation_id=new_id(), origin="http"))
    if not CONFIGS["django_guid"].missing():
        from django_guid.context import guid

        guid.set(uuid.uuid4().hex)
    if not CONFIGS["log_request_id"].missing():
        from log_request_id import local

        local.request_id = uuid.uuid4().hex
    if not CONFIGS["django_cid"].missing():
        from cid.locals import set_cid

        set_cid(str(uuid.uuid4()))


def measure(rounds: int, records: int) -> dict[str, dict[str, list[float]] | dict[str, str]]:
    import django

    django.setup()
    _bind_every_library()
    setups = _setups()
    loggers = {setup.key: _logger(setup) for setup in setups}
    for logger in loggers.values():
        for _ in range(records // 4):
            logger.info("order %s paid", 42)
    timings: dict[str, list[float]] = {key: [] for key in loggers}
    keys = list(loggers)
    for round_index in range(rounds):
        shift = round_index % len(keys)
        for key in keys[shift:] + keys[:shift]:
            info = loggers[key].info
            gc.collect()
            started = time.perf_counter_ns()
            for _ in range(records):
                info("order %s paid", 42)
            timings[key].append((time.perf_counter_ns() - started) / records / 1000)
    return {"labels": {setup.key: setup.label for setup in setups}, "timings": timings}


def run(quick: bool) -> Section:
    rounds, records = (5, 1000) if quick else (60, 4000)
    with Worker("benchmarks.log_records", {"BENCH_EDGE": "tracing_app"}) as worker:
        measured = worker.request("measure", rounds=rounds, records=records)
    labels, timings = measured["labels"], measured["timings"]
    section = Section("logging", TITLE)
    section.columns = ["Setup", "µs/record", "added µs", "ratio to plain"]
    baseline = timings["plain"]
    for key, values in timings.items():
        section.rows.append([labels[key], *baseline_cells(values, baseline, 2)])
    section.notes = [
        f"{rounds} rounds of {records} records (`logger.info('order %s paid', 42)`) per setup, interleaved, "
        "written to a stream that discards; every library has a transaction current.",
        "Text setups add the library's ID field to the same format string; the JSON formatter writes "
        "timestamp, level, logger, message, the four IDs, process and thread.",
    ]
    section.data = {"rounds": rounds, "records_per_round": records, "us_per_record": timings}
    return section


if __name__ == "__main__":
    serve({}, {"measure": lambda rounds, records: measure(rounds, records)})
