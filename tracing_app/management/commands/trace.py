"""``manage.py trace <ID>``: one transaction's causal tree and timeline, as the admin shows it."""

from __future__ import annotations

import json
import shutil
import textwrap
from datetime import UTC
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tracing_app.traces import queries, timeline

# Control characters (newlines, ANSI escapes) in stored values could rewrite the terminal.
_CONTROL = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}


def printable(value: object) -> str:
    return str(value).translate(_CONTROL)


class Command(BaseCommand):
    help = "Print the causal tree and the timeline (in sequence order) of one transaction."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "correlation_id", help="the correlation ID (from an error page, a header, a log line)"
        )
        parser.add_argument(
            "--format",
            choices=("text", "json"),
            default="text",
            help="text (default) or json: one object with the hops and the events",
        )
        parser.add_argument("--attributes", action="store_true", help="print each event's attributes too")

    def handle(self, *args: Any, correlation_id: str, format: str, attributes: bool, **options: Any) -> None:
        events, _ = queries.events_of(correlation_id, limit=None)
        if not events:
            raise CommandError(
                f"No events stored for {printable(correlation_id)!s}: not sampled (only errors are kept), "
                "purged after the retention period, or mistyped."
            )
        trace = timeline.build(correlation_id, events)
        if format == "json":
            self.stdout.write(json.dumps(as_json(trace), indent=2, ensure_ascii=True, default=str))
            return
        self.write_text(trace, attributes)

    def write_text(self, trace: timeline.Timeline, with_attributes: bool) -> None:
        out = self.stdout
        style = self.style
        figures = trace.figures
        out.write(style.MIGRATE_HEADING(f"Trace {printable(trace.correlation_id)}"))
        headline = f"  {trace.outcome.upper()}  {trace.duration_label} first to last event"
        out.write(style.ERROR(headline) if trace.tone == "bad" else headline)
        counts = [
            _count(figures.requests, "request"),
            _count(figures.tasks, "task"),
            _count(figures.retries, "retry", "retries"),
            _count(figures.errors, "error"),
            _count(len(trace.hops), "hop"),
            _count(len(trace.rows), "event"),
        ]
        out.write("  " + ", ".join(counts))
        if figures.entry.name:
            out.write(
                f"  entry point {printable(figures.entry.name)} {printable(figures.entry.status)}".rstrip()
            )
        if trace.started_at is not None:
            started = trace.started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            out.write(f"  started {started} on {printable(', '.join(trace.hosts) or '-')}")
        if trace.errors_only:
            out.write(style.WARNING("  Not sampled: only its errors were recorded."))
        if trace.clock_skew_ms:
            out.write(
                style.WARNING(
                    f"  Hosts' clocks disagree by up to {trace.clock_skew_ms:.0f} ms; order follows causes."
                )
            )

        out.write("")
        out.write(style.MIGRATE_HEADING("Causal tree"))
        for hop in trace.hops:
            indent = "  " * hop.depth + ("└ " if hop.depth else "")
            parts = [f"{indent}[{hop.kind}] {printable(hop.name or '(unnamed)')}", printable(hop.hop_id)]
            parts += [hop.outcome, printable(hop.status), hop.duration_label, f"attempts={hop.attempts}"]
            if hop.retries:
                parts.append(f"retries={hop.retries} ({' + '.join(hop.attempt_durations)})")
            parts.append(f"#{hop.first_sequence}-{hop.last_sequence}")
            line = "  ".join(part for part in parts if part)
            out.write(style.ERROR(line) if hop.failed else line)
            if hop.failed and hop.error_summary:
                out.write(style.ERROR(f"{'  ' * hop.depth}    ! {printable(hop.error_summary)}"))

        out.write("")
        out.write(style.MIGRATE_HEADING("Timeline"))
        width = shutil.get_terminal_size((120, 24)).columns
        out.write(
            f"{'#':>5}  {'time':<12}  {'hop':<30}  {'event':<17}  {'status':<8}  {'duration':>9}  details"
        )
        for row in trace.rows:
            event = row.event
            hop_label = ("  " * row.depth + printable(row.hop.short_name or row.hop.hop_id))[:30]
            line = (
                f"{event.sequence:>5}  {row.time_label:<12}  {hop_label:<30}  {row.kind_label:<17}  "
                f"{printable(event.status)[:8]:<8}  {row.duration_label:>9}  {printable(row.summary)}"
            )
            out.write(style.ERROR(line) if event.error else line)
            if with_attributes:
                for key, value in row.attribute_items:
                    self.write_wrapped(f"{printable(key)} = {printable(value)}", indent=7, width=width)
                parsed = row.traceback
                if parsed is not None:
                    self.write_wrapped(printable(parsed.exception), indent=7, width=width)
                    for frame in reversed(parsed.frames):
                        where = f"at {frame.location} in {frame.function}: {frame.code}".rstrip(": ")
                        self.write_wrapped(printable(where), indent=9, width=width)

    def write_wrapped(self, text: str, *, indent: int, width: int) -> None:
        lines = textwrap.wrap(
            text,
            width=max(width, indent + 20),
            initial_indent=" " * indent,
            subsequent_indent=" " * (indent + 4),
            break_on_hyphens=False,
        )
        for line in lines:
            self.stdout.write(line)


def _count(n: int, noun: str, plural: str = "") -> str:
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def as_json(trace: timeline.Timeline) -> dict[str, Any]:
    return {
        "correlation_id": trace.correlation_id,
        "summary": {
            "outcome": trace.outcome,
            "duration_ms": trace.figures.duration_ms,
            "entry_point": trace.figures.entry.name,
            "requests": trace.figures.requests,
            "tasks": trace.figures.tasks,
            "retries": trace.figures.retries,
            "errors": trace.figures.errors,
        },
        "hops": [
            {
                "hop_id": hop.hop_id,
                "parent_id": hop.parent_id,
                "depth": hop.depth,
                "kind": hop.kind,
                "name": hop.name,
                "outcome": hop.outcome,
                "status": hop.status,
                "duration_ms": hop.duration_ms,
                "attempts": hop.attempts,
                "retries": hop.retries,
                "error": hop.error_summary or None,
            }
            for hop in trace.hops
        ],
        "events": [
            {
                "sequence": row.event.sequence,
                "hop_id": row.event.hop_id,
                "causation_id": row.event.causation_id,
                "kind": row.event.kind,
                "name": row.event.name,
                "status": row.event.status,
                "duration_ms": row.event.duration_ms,
                "error": row.event.error,
                "timestamp": row.event.timestamp.isoformat(),
                "host": row.event.host,
                "pid": row.event.pid,
                "attributes": row.event.attributes,
            }
            for row in trace.rows
        ],
    }
