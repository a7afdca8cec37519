"""What every section returns, and how the whole run is printed (markdown) and saved (JSON)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Check:
    """One target from the issue, measured: reported, never asserted."""

    target: str
    measured: str
    met: bool


@dataclass
class Section:
    """One measurement area: a table, notes on how to read it, raw figures and target checks."""

    key: str
    title: str
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"

    @classmethod
    def skipped(cls, key: str, title: str, reason: str) -> Section:
        return cls(key, title, notes=[f"Skipped: {reason}"], status="skipped")


def markdown_table(columns: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(columns)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)) + " |"

    separator = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(columns), separator, *(line(r) for r in rows)])


def render(machine: dict[str, Any], sections: list[Section]) -> str:
    """The whole run as markdown, ready to paste into the README."""
    parts = [f"Run {machine['date']} on {machine['summary']}."]
    for section in sections:
        parts.append(f"### {section.title}")
        if section.rows:
            parts.append(markdown_table(section.columns, section.rows))
        if section.notes:
            parts.append("\n".join(f"- {note}" for note in section.notes))
    checks = [check for section in sections for check in section.checks]
    if checks:
        parts.append("### Targets")
        parts.append(
            markdown_table(
                ["Target", "Measured: median (min..max)", "Met"],
                [[c.target, c.measured, "yes" if c.met else "**no**"] for c in checks],
            )
        )
    return "\n\n".join(parts) + "\n"


def write_json(path: Path, machine: dict[str, Any], quick: bool, sections: list[Section]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"machine": machine, "quick": quick, "sections": [asdict(s) for s in sections]}
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
