"""``manage.py relay_outbox``: publish outbox rows the committing processes did not."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tracing_app.outbox.relay import relay_batch, run_relay


class Command(BaseCommand):
    help = (
        "Publish outbox messages that are due. Runs until SIGINT/SIGTERM, or with --once makes one pass "
        "and exits. Any number may run side by side (rows are taken with SKIP LOCKED)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="One pass, then exit.")

    def handle(self, *args: Any, once: bool, **options: Any) -> None:
        if once:
            self.stdout.write(f"{relay_batch()} message(s) relayed.")
            return
        stopping = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stopping.set())
        run_relay(stopping)
