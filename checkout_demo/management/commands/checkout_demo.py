"""``manage.py checkout_demo``: run the scripted checkout scenarios against a running demo, over HTTP."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from checkout_demo.customers import TOKENS_FILE, saved_tokens
from checkout_demo.links import trace_command, trace_path
from checkout_demo.scenario import DemoUnreachable, Outcome, run_scenarios


class Command(BaseCommand):
    help = (
        "Place a successful, a declined, a timed-out-and-retried, a response-lost, a gateway-down and a "
        "double-submitted order against the running demo (./dev demo), wait for each checkout to end, and "
        "print its correlation ID, final state and where to look. Exits 1 if any ends in the wrong state."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--url",
            default=os.environ.get("CHECKOUT_DEMO_URL", "http://127.0.0.1:8000"),
            help="Where the demo runs (default: $CHECKOUT_DEMO_URL or http://127.0.0.1:8000).",
        )
        parser.add_argument("--deadline", type=float, default=90.0, help="Seconds to wait for the checkouts.")
        parser.add_argument(
            "--tokens",
            type=Path,
            default=None,
            help=f"The customers' API tokens, as rundemo wrote them (default: VAR_DIR/{TOKENS_FILE}).",
        )

    def handle(
        self, *args: Any, url: str, deadline: float, tokens: Path | None, verbosity: int, **options: Any
    ) -> None:
        base_url = url.rstrip("/")
        tokens = tokens or Path(settings.VAR_DIR) / TOKENS_FILE
        self.stdout.write(f"Running the checkout scenarios against {base_url} (deadline {deadline:g}s)...")
        try:
            outcomes = run_scenarios(
                base_url,
                deadline,
                progress=(lambda m: self.stdout.write(f"  {m}")) if verbosity > 1 else print_nothing,
                tokens=saved_tokens(tokens),
            )
        except DemoUnreachable as exc:
            self.stderr.write(f"{exc}\nIs the demo running? Start it with ./dev demo in another terminal.")
            sys.exit(2)
        self.stdout.write("")
        for outcome in outcomes:
            self.stdout.write(self.describe(outcome, base_url))
        failed = [o for o in outcomes if not o.ok]
        if failed:
            self.stdout.write(self.style.ERROR(f"{len(failed)} of {len(outcomes)} scenarios ended wrong."))
            sys.exit(1)
        self.stdout.write(self.style.SUCCESS(f"All {len(outcomes)} scenarios ended as expected."))

    def describe(self, outcome: Outcome, base_url: str) -> str:
        scenario = outcome.scenario
        mark = self.style.SUCCESS("ok  ") if outcome.ok else self.style.ERROR("FAIL")
        order = outcome.order
        failure = order.get("failure")
        state = outcome.status + (f" ({failure['code']}: {failure['message']})" if failure else "")
        lines = [
            f"{mark} {scenario.name}: {scenario.summary}",
            f"       order {order.get('id', '-')} of {outcome.customer}: {state}",
            f"       correlation ID: {outcome.correlation_id or '-'}",
        ]
        if outcome.correlation_id:
            path = (order.get("links") or {}).get("trace") or trace_path(outcome.correlation_id)
            if path:
                lines.append(f"       trace in the admin: {base_url}{path}")
            lines.append(f"       trace in a terminal: {trace_command(outcome.correlation_id)}")
        lines += [f"       {note}" for note in outcome.notes]
        lines += [self.style.ERROR(f"       problem: {problem}") for problem in outcome.problems]
        return "\n".join(lines) + "\n"


def print_nothing(message: str) -> None:
    """Progress is shown with --verbosity 2."""
