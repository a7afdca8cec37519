"""``manage.py purge_idempotency``: delete expired idempotency records in batches."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tracing_app.conf import app_settings
from tracing_app.idempotency.store import purge_expired


class Command(BaseCommand):
    help = (
        "Delete idempotency records past their expiry (IDEMPOTENCY_TTL), a batch per statement. Records "
        "of an attempt still holding its lease are kept until it ends."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help="Rows deleted per statement (default: IDEMPOTENCY_PURGE_BATCH_SIZE).",
        )
        parser.add_argument(
            "--database",
            default=None,
            help="Database alias (default: IDEMPOTENCY_DATABASE).",
        )

    def handle(self, *args: Any, batch_size: int | None, database: str | None, **options: Any) -> None:
        size = app_settings.IDEMPOTENCY_PURGE_BATCH_SIZE if batch_size is None else batch_size
        if size < 1:
            raise CommandError(f"--batch-size must be at least 1, not {size}")
        deleted = purge_expired(database or app_settings.IDEMPOTENCY_DATABASE, size)
        self.stdout.write(f"Deleted {deleted} expired idempotency record(s).")
