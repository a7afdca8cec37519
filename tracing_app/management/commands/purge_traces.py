"""``manage.py purge_traces [--older-than 7d]``: delete trace events past the retention period, oldest
first, one slice of the time index per statement."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tracing_app.traces.retention import parse_duration, purge, retention


class Command(BaseCommand):
    help = (
        "Delete trace events older than --older-than (default: TRACING_APP['TRACE_RETENTION']), oldest "
        "first, a batch per statement, each committed on its own so recording never waits on it. Run it "
        "daily (cron, a Celery beat task calling call_command)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            metavar="DURATION",
            help="e.g. 7d, 12h, 1d12h, 90m, 2w, seconds, or ISO 8601 (P7D); default TRACE_RETENTION",
        )
        parser.add_argument("--batch-size", type=int, help="rows per DELETE (default TRACE_PURGE_BATCH_SIZE)")
        parser.add_argument("--dry-run", action="store_true", help="count what would go, delete nothing")

    def handle(
        self, *args: Any, older_than: str | None, batch_size: int | None, dry_run: bool, **options: Any
    ) -> None:
        try:
            age = parse_duration(older_than) if older_than is not None else retention()
            if batch_size is not None and batch_size < 1:
                raise ValueError("--batch-size must be at least 1")
            result = purge(age, batch_size=batch_size, dry_run=dry_run)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        verb = "Would delete" if dry_run else "Deleted"
        self.stdout.write(
            f"{verb} {result.events} trace events and {result.traces} traces "
            f"recorded before {result.cutoff.isoformat(timespec='seconds')} (older than {age})."
        )
