"""Running some of the suite's modules again in a pytest process of its own, on a SQLite database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_on_sqlite(modules: list[str], database: Path) -> str:
    """Run ``modules`` with ``DATABASE_URL`` pointing at the SQLite file ``database``; returns pytest's
    summary line once the run has passed (its output is the failure message otherwise)."""
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", *modules, "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": f"sqlite:///{database}"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-2000:]
    return completed.stdout.strip().splitlines()[-1] if completed.stdout.strip() else ""
