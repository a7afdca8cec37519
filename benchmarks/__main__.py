"""``python -m benchmarks [--quick] [--json PATH] [--only SECTION ...]``: run, print the table, save JSON."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
from pathlib import Path

from benchmarks.isolation import ROOT
from benchmarks.machine import describe
from benchmarks.report import Section, render, write_json

# Section key -> module with ``TITLE`` and ``run(quick) -> Section``, in the order they are printed.
SECTIONS = {
    "http_inprocess": "benchmarks.http_inprocess",
    "http_e2e": "benchmarks.http_e2e",
    "celery_publish": "benchmarks.celery_publish",
    "outbox": "benchmarks.outbox_cost",
    "logging": "benchmarks.log_records",
    "idempotency": "benchmarks.idempotency_cost",
    "trace_store": "benchmarks.trace_store",
    "purge": "benchmarks.trace_purge",
    "writer": "benchmarks.writer_throughput",
    "id_minting": "benchmarks.id_minting",
    "instructions": "benchmarks.instructions",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run: every section, briefly")
    parser.add_argument(
        "--json",
        type=Path,
        default=ROOT / "var" / "benchmarks.json",
        help="where to write the figures (default: var/benchmarks.json)",
    )
    parser.add_argument("--only", nargs="+", choices=SECTIONS, metavar="SECTION", help="run these sections")
    args = parser.parse_args(argv)

    machine = describe()
    sections: list[Section] = []
    failed = False
    for key in args.only or SECTIONS:
        module = importlib.import_module(SECTIONS[key])
        print(f"running {key} ...", file=sys.stderr, flush=True)
        started = time.monotonic()
        try:
            section = module.run(args.quick)
        except Exception as exc:
            failed = True
            section = Section(key, module.TITLE, notes=[f"Failed: {exc!r}"], status="error")
            section.data = {"traceback": traceback.format_exc()}
            traceback.print_exc()
        print(f"  {key}: {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
        sections.append(section)

    machine["load_average_end"] = os.getloadavg()[0]
    machine["mode"] = "quick smoke run, figures are rough" if args.quick else "full run"
    # The load average says how busy the machine was with other work: the wider the min..max, the busier.
    headline = (
        f"{machine['summary']}; load average {machine['load_average_start']:.2f} at start, "
        f"{machine['load_average_end']:.2f} at end ({machine['mode']})"
    )
    print(render({**machine, "summary": headline}, sections))
    write_json(args.json, machine, args.quick, sections)
    print(f"figures written to {args.json}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
