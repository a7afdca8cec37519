"""``manage.py rebuild_trace_figures [--all]``: recount the list's figures from the stored events."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tracing_app.conf import app_settings
from tracing_app.traces.rollup import rebuild


class Command(BaseCommand):
    help = (
        "Recount each transaction's outcome, duration and counts from its events: the rows written before "
        "these figures existed, or with --all every row (after changing TRACE_COMPENSATION_TASKS)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--all", action="store_true", dest="everything", help="recount every transaction")
        parser.add_argument(
            "--batch-size", type=int, default=200, help="transactions per batch (default 200)"
        )

    def handle(self, *args: Any, everything: bool, batch_size: int, **options: Any) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        total = sum(rebuild(app_settings.TRACE_DATABASE, everything=everything, batch_size=batch_size))
        self.stdout.write(f"Recounted the figures of {total} transaction{'' if total == 1 else 's'}.")
