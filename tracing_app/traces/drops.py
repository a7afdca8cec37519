"""Dropped trace events as a metric: each process adds its count to its own row, the admin shows the sum."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from tracing_app.conf import app_settings
from tracing_app.traces.models import DroppedEvents


def add(alias: str, host: str, pid: int, process_started: datetime, count: int) -> None:
    """Add ``count`` to this process's row; only the process's own writer thread writes it, so there is
    no race between the update and the insert."""
    now = timezone.now()
    process = DroppedEvents.objects.using(alias).filter(host=host, pid=pid, process_started=process_started)
    with transaction.atomic(using=alias):
        if not process.update(dropped=F("dropped") + count, updated_at=now):
            DroppedEvents.objects.using(alias).create(
                host=host, pid=pid, process_started=process_started, dropped=count, updated_at=now
            )


def total() -> int:
    """Events dropped by every process whose count is still stored."""
    manager = DroppedEvents.objects.using(app_settings.TRACE_DATABASE)
    return manager.aggregate(total=Sum("dropped"))["total"] or 0
