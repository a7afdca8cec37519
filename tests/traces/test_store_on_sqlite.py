"""The trace store's purge and search tests again on SQLite, the embedded default, in a process of
their own (the suite runs them on PostgreSQL, marked services)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULES = ["tests/traces/test_purge.py", "tests/traces/test_search_scale.py"]


def test_purge_and_search_on_sqlite(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", *MODULES, "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'store.sqlite3'}"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    summary = completed.stdout.strip().splitlines()[-1] if completed.stdout.strip() else ""
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary, summary
