"""Summaries of repeated measurements: median with min/max, and pair-by-pair ratios and differences.

Configurations are measured in interleaved rounds, so round ``i`` of one configuration ran next to round
``i`` of its baseline. Comparing them round by round cancels most of the drift a shared machine adds
(another process waking up hurts both sides of a pair, not one side of the whole comparison).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Summary:
    """Median, min and max of one figure over repeated runs."""

    median: float
    min: float
    max: float
    runs: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        if not values:
            raise ValueError("no measurements to summarise")
        return cls(statistics.median(values), min(values), max(values), len(values))

    def format(self, digits: int = 1, suffix: str = "") -> str:
        """``12.3 (11.9..13.0)``: the median, then the range over all runs."""
        return f"{self.median:.{digits}f}{suffix} ({self.min:.{digits}f}..{self.max:.{digits}f})"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def paired_ratios(values: Sequence[float], baseline: Sequence[float]) -> Summary:
    """``values[i] / baseline[i]`` for every round, summarised."""
    _check_pairs(values, baseline)
    return Summary.of([v / b for v, b in zip(values, baseline, strict=True)])


def paired_differences(values: Sequence[float], baseline: Sequence[float]) -> Summary:
    """``values[i] - baseline[i]`` for every round, summarised."""
    _check_pairs(values, baseline)
    return Summary.of([v - b for v, b in zip(values, baseline, strict=True)])


def baseline_cells(values: Sequence[float], baseline: Sequence[float], digits: int) -> list[str]:
    """A table row's figures: median (min..max), added over the baseline, ratio to it.

    The baseline's own row (``values is baseline``) reads ``0`` and ``1.00``.
    """
    if values is baseline:
        return [Summary.of(values).format(digits), "0", "1.00"]
    return [
        Summary.of(values).format(digits),
        paired_differences(values, baseline).format(digits),
        paired_ratios(values, baseline).format(2),
    ]


def _check_pairs(values: Sequence[float], baseline: Sequence[float]) -> None:
    if len(values) != len(baseline):
        raise ValueError(f"cannot pair {len(values)} runs with {len(baseline)} baseline runs")
