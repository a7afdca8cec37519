"""Minting one correlation ID: tracing_app's encoder against python-ulid's ``str(ULID())``.

Every request mints one, so this decides which one the middleware uses: python-ulid is kept for parsing
and reading an ID's mint time, and minting stays with tracing_app's encoder only while python-ulid's
costs more than 1 µs extra per ID. Interleaved rounds, compared pair by pair.
"""

from __future__ import annotations

import timeit

from benchmarks.report import Check, Section
from benchmarks.stats import Summary, baseline_cells, paired_differences

TITLE = "Minting an ID (µs per ID)"
TARGET_US = 1.0


def run(quick: bool) -> Section:
    from ulid import ULID

    from tracing_app.ids import new_id

    rounds, number = (5, 20_000) if quick else (15, 100_000)
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(rounds):
        ours.append(timeit.timeit(new_id, number=number) / number * 1e6)
        theirs.append(timeit.timeit(lambda: str(ULID()), number=number) / number * 1e6)
    added = paired_differences(theirs, ours)
    section = Section(
        "id_minting",
        TITLE,
        columns=["Minting", "µs per ID", "added", "ratio"],
        rows=[
            ["tracing_app.ids.new_id (baseline)", *baseline_cells(ours, ours, 2)],
            ["python-ulid str(ULID())", *baseline_cells(theirs, ours, 2)],
        ],
        notes=[f"{rounds} interleaved rounds of {number} IDs each."],
        data={"new_id": Summary.of(ours).as_dict(), "python_ulid": Summary.of(theirs).as_dict()},
    )
    section.checks.append(
        Check(
            f"python-ulid's mint adds > {TARGET_US:g} µs/ID (so tracing_app mints its own)",
            added.format(2, " µs"),
            added.median > TARGET_US,
        )
    )
    return section
