"""Hot paths in instructions (callgrind): repeatable on a busy machine, where timings are not.

Each path runs in a process of its own under ``valgrind --tool=callgrind`` twice, with ``N`` operations and
with none; the difference divided by ``N`` is what one operation costs, Django's and Python's start-up
left out. Full run only: every count takes a valgrind run of a whole Django process.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

from benchmarks.instruction_paths import EDGES
from benchmarks.isolation import ROOT
from benchmarks.report import Section

TITLE = "Hot paths in instructions (callgrind, per operation)"
OPERATIONS = 2000
_COLLECTED = re.compile(r"Collected : (\d+)")

ROWS = (
    ("HTTP edge: tracing_app, ID only", "tracing_app", "bare"),
    ("HTTP edge: django-guid", "django_guid", "bare"),
    ("HTTP edge: django-log-request-id", "log_request_id", "bare"),
    ("HTTP edge: django-cid", "django_cid", "bare"),
    ("log filter on one record (record creation included)", "log_filter", None),
    ("before_task_publish: tracing_app's receiver", "publish", "publish_bare"),
)


def count(path: str, operations: int) -> int:
    completed = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            "-m",
            "benchmarks.instruction_paths",
            path,
            str(operations),
        ],
        cwd=ROOT,
        # A fixed hash seed: string hashing decides dict and set layouts, and with them the counts.
        env={**os.environ, "PYTHONHASHSEED": "0"},
        capture_output=True,
        text=True,
        check=True,
    )
    return int(_COLLECTED.search(completed.stderr).group(1))


def per_operation(path: str) -> int:
    return (count(path, OPERATIONS) - count(path, 0)) // OPERATIONS


def run(quick: bool) -> Section:
    if quick:
        return Section.skipped("instructions", TITLE, "full run only (a valgrind run per figure)")
    if shutil.which("valgrind") is None:
        return Section.skipped("instructions", TITLE, "valgrind is not installed")
    measured: dict[str, int] = {}
    rows = []
    for label, path, baseline in ROWS:
        for needed in (path, baseline):
            if needed is not None and needed not in measured:
                try:
                    measured[needed] = per_operation(needed)
                except subprocess.CalledProcessError:
                    measured[needed] = -1
        if measured[path] < 0 or (baseline is not None and measured[baseline] < 0):
            rows.append([label, "not measured (the path failed to run)"])
            continue
        own = measured[path] - (measured[baseline] if baseline else 0)
        rows.append([label, f"{own:,}"])
    return Section(
        "instructions",
        TITLE,
        columns=["Hot path", "instructions per operation"],
        rows=rows,
        notes=[
            f"{OPERATIONS} operations minus none, each path in its own process; HTTP rows are a WSGI request "
            "to a plain view minus the same request with no middleware ("
            + ", ".join(name for name in EDGES if name != "bare")
            + "), with PYTHONHASHSEED=0."
        ],
        data={"per_operation": measured},
    )
